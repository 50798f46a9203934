"""Step: link another incident to a report, and keep linked incidents' facts current.

The incident is read from its source's API when one is configured (only the operator's base URLs
are ever called); the key metrics are then recomputed across every linked incident.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from postmortem.activities.clients import OutsideClients
from postmortem.config import HttpSettings, JsmSettings, OpsgenieSettings, PagerDutySettings, reveal
from postmortem.evidence.key_metrics import compute_metrics
from postmortem.evidence.responders import known_emails
from postmortem.evidence.timeline import from_incident
from postmortem.incident.jsm import incident_from_jsm_alert
from postmortem.incident.opsgenie import incident_from_alert_api
from postmortem.incident.pagerduty import incident_from_rest
from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.jsm_ops_api import JsmOpsClient
from postmortem.integrations.opsgenie_api import OpsgenieClient
from postmortem.integrations.pagerduty_api import PagerDutyClient
from postmortem.models import Incident, KeyMetrics, Severity, Source
from postmortem.store.postmortems import IncidentTaken
from postmortem.store.store import Store


class LinkIncidentInput(BaseModel):
    postmortem_id: str
    source: Source
    incident_id: str
    now: AwareDatetime


class RefreshIncidentInput(BaseModel):
    postmortem_id: str
    incident: Incident
    now: AwareDatetime
    delivery_id: str | None = None  # the inbox entry holding the incident's raw payload


class LinkedIncident(BaseModel):
    incident: Incident
    metrics: KeyMetrics


class LinkActivities:
    """`clients` are the worker's shared ones (`OutsideClients`); without them this object builds its
    own, once, for the sources these sections configure (closed by `aclose`)."""

    def __init__(
        self,
        store: Store,
        *,
        pagerduty: PagerDutySettings | None = None,
        opsgenie: OpsgenieSettings | None = None,
        jsm: JsmSettings | None = None,
        http: HttpSettings | None = None,
        clients: OutsideClients | None = None,
    ) -> None:
        self._store = store
        self._pagerduty = pagerduty or PagerDutySettings()
        self._opsgenie = opsgenie or OpsgenieSettings()
        j = jsm or JsmSettings()
        self._owned = clients is None
        self._clients = clients or OutsideClients.configured(
            pagerduty=self._pagerduty, opsgenie=self._opsgenie, jsm=j, http=http
        )
        token, key, c = reveal(self._pagerduty.api_token), reveal(self._opsgenie.api_key), self._clients
        self._pd = PagerDutyClient(self._pagerduty.api_url, token, c.pagerduty) if token and c.pagerduty else None
        self._og = OpsgenieClient(self._opsgenie.api_url, key, c.opsgenie) if key and c.opsgenie else None
        jsm_token = reveal(j.api_token)
        self._jsm = (
            JsmOpsClient(j.api_url, j.cloud_id, j.email, jsm_token, c.jsm)
            if j.cloud_id and j.email and jsm_token and c.jsm
            else None
        )

    async def aclose(self) -> None:
        """Close the clients this object built itself (the worker closes its shared ones)."""
        if self._owned:
            await self._clients.aclose()

    async def _fetch(self, source: Source, incident_id: str) -> Incident:
        try:
            if source == Source.PAGERDUTY and self._pd is not None:
                return incident_from_rest(await self._pd.get_incident(incident_id))
            if source == Source.OPSGENIE and self._og is not None:
                return incident_from_alert_api(await self._og.get_alert(incident_id))
            if source == Source.JSM and self._jsm is not None:
                return incident_from_jsm_alert(await self._jsm.get_alert(incident_id))
        except UpstreamError as exc:
            raise ApplicationError(str(exc), type="UpstreamError", non_retryable=exc.permanent) from exc
        # No API configured: link what we know; its own webhook or the gather step fills it in later.
        return Incident(
            source=source, id=incident_id, title=f"{source.value} incident {incident_id}", severity=Severity.SEV4
        )

    async def _recompute(self, postmortem_id: str, now: datetime) -> KeyMetrics:
        pm = await self._store.postmortems.get(postmortem_id)
        timeline = await self._store.evidence.entries(postmortem_id)
        entries = timeline or [e for i in pm.incidents for e in from_incident(i)]
        metrics = compute_metrics(pm.incidents, entries, known_emails(pm.metrics.people))
        await self._store.postmortems.set_metrics(postmortem_id, metrics, now)
        return metrics

    @activity.defn(name="link_incident")
    async def link_incident(self, input: LinkIncidentInput) -> LinkedIncident:
        incident = await self._fetch(input.source, input.incident_id)
        try:
            await self._store.postmortems.link_incident(input.postmortem_id, incident, input.now)
        except IncidentTaken as exc:
            raise ApplicationError(str(exc), type="IncidentTaken", non_retryable=True) from exc
        await self._store.evidence.add_entries(input.postmortem_id, from_incident(incident))
        return LinkedIncident(
            incident=incident.summary(), metrics=await self._recompute(input.postmortem_id, input.now)
        )

    @activity.defn(name="refresh_incident")
    async def refresh_incident(self, input: RefreshIncidentInput) -> KeyMetrics:
        incident = await self._store.inbox.with_raw(input.incident, input.delivery_id)
        await self._store.postmortems.replace_incident(input.postmortem_id, incident)
        await self._store.evidence.add_entries(input.postmortem_id, from_incident(incident))
        return await self._recompute(input.postmortem_id, input.now)
