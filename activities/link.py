"""Step: link another incident to a report, and keep linked incidents' facts current.

The incident is read from its source's API when one is configured (only the operator's base URLs
are ever called); the key metrics are then recomputed across every linked incident.
"""

from __future__ import annotations

from datetime import datetime

import httpx
from pydantic import AwareDatetime, BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from postmortem.activities.gather import GatherConfig
from postmortem.evidence.key_metrics import compute_metrics
from postmortem.evidence.timeline import from_incident
from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.opsgenie_api import OpsgenieClient
from postmortem.integrations.pagerduty_api import PagerDutyClient
from postmortem.models import Incident, KeyMetrics, Severity, Source
from postmortem.store.postmortems import IncidentTaken
from postmortem.store.store import Store
from postmortem.webhooks.opsgenie import incident_from_alert_api
from postmortem.webhooks.pagerduty import incident_from_rest


class LinkIncidentInput(BaseModel):
    postmortem_id: str
    source: Source
    incident_id: str
    now: AwareDatetime


class RefreshIncidentInput(BaseModel):
    postmortem_id: str
    incident: Incident
    now: AwareDatetime


class LinkedIncident(BaseModel):
    incident: Incident
    metrics: KeyMetrics


class LinkActivities:
    def __init__(self, store: Store, config: GatherConfig) -> None:
        self._store = store
        self._config = config

    async def _fetch(self, source: Source, incident_id: str) -> Incident:
        async with httpx.AsyncClient(timeout=self._config.http_timeout_seconds) as http:
            try:
                if source == Source.PAGERDUTY and self._config.pagerduty_api_token:
                    client = PagerDutyClient(self._config.pagerduty_api_url, self._config.pagerduty_api_token, http)
                    return incident_from_rest(await client.get_incident(incident_id))
                if source == Source.OPSGENIE and self._config.opsgenie_api_key:
                    client = OpsgenieClient(self._config.opsgenie_api_url, self._config.opsgenie_api_key, http)
                    return incident_from_alert_api(await client.get_alert(incident_id))
            except UpstreamError as exc:
                raise ApplicationError(str(exc), type="UpstreamError", non_retryable=exc.permanent) from exc
        # No API configured: link what we know; its own webhook or the gather step fills it in later.
        return Incident(
            source=source, id=incident_id, title=f"{source.value} incident {incident_id}", severity=Severity.SEV4
        )

    async def _recompute(self, postmortem_id: str, now: datetime) -> KeyMetrics:
        pm = await self._store.postmortems.get(postmortem_id)
        timeline = await self._store.evidence.entries(postmortem_id)
        metrics = compute_metrics(pm.incidents, timeline or [e for i in pm.incidents for e in from_incident(i)])
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
        await self._store.postmortems.replace_incident(input.postmortem_id, input.incident)
        await self._store.evidence.add_entries(input.postmortem_id, from_incident(input.incident))
        return await self._recompute(input.postmortem_id, input.now)
