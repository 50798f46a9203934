"""Step: gather the evidence for one incident from each configured source into the store.

Each activity pages through its source, writes every page to the store (idempotently, keyed per
source item) and heartbeats its cursor, so a retry on another worker resumes where the dead one
stopped. The workflow gets counts back, never the entries. A permanent upstream error (401, 403,
404) is recorded on the report instead of retried; a transient one (429, 5xx, timeout) is retried
with the upstream's Retry-After when it gives one.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field
from temporalio import activity

from postmortem.activities.clients import OutsideClients
from postmortem.activities.upstream import activity_error
from postmortem.config import (
    AlertmanagerSettings,
    HttpSettings,
    JsmSettings,
    OpsgenieSettings,
    PagerDutySettings,
    SlackSettings,
    reveal,
)
from postmortem.evidence.models import EvidenceSource, GatherState, SourceStatus, TimelineEntry
from postmortem.evidence.timeline import (
    from_alert_event,
    from_jsm_log,
    from_jsm_note,
    from_opsgenie_log,
    from_opsgenie_note,
    from_pagerduty_alert,
    from_pagerduty_log_entry,
    from_pagerduty_note,
    from_slack_message,
)
from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.jsm_ops_api import JsmOpsClient
from postmortem.integrations.opsgenie_api import OpsgenieClient
from postmortem.integrations.pagerduty_api import PagerDutyClient
from postmortem.integrations.pagination import Page
from postmortem.integrations.slack_api import SlackClient
from postmortem.store.evidence import EvidenceStore

SLACK_CHANNEL = re.compile(r"/archives/([A-Z0-9]{6,})")


class GatherInput(BaseModel):
    postmortem_id: str
    incident_id: str


class GatherAlertsInput(BaseModel):
    postmortem_id: str
    incident_id: str
    services: list[str]
    label_matchers: list[dict[str, str]] = Field(default_factory=list)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None


class GatherSlackInput(BaseModel):
    postmortem_id: str
    incident_id: str
    links: list[str]
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None


class GatherResult(BaseModel):
    source: EvidenceSource
    state: GatherState
    entries: int = 0
    detail: str | None = None


Fetch = Callable[[str | None], Awaitable[Page[dict[str, Any]]]]
Convert = Callable[[dict[str, Any]], list[TimelineEntry]]


# What a source needs before it can be read, as its not-configured status says.
UNSET: dict[EvidenceSource, str] = {
    EvidenceSource.PAGERDUTY: "POSTMORTEM_PAGERDUTY_API_TOKEN is not set",
    EvidenceSource.OPSGENIE: "POSTMORTEM_OPSGENIE_API_KEY is not set",
    EvidenceSource.JSM: "POSTMORTEM_JSM_CLOUD_ID, POSTMORTEM_JSM_EMAIL and POSTMORTEM_JSM_API_TOKEN are not all set",
    EvidenceSource.SLACK: "POSTMORTEM_SLACK_BOT_TOKEN is not set",
}


def _one(convert: Callable[[dict[str, Any], str], TimelineEntry | None], incident_id: str) -> Convert:
    return lambda item: [entry] if (entry := convert(item, incident_id)) is not None else []


class GatherActivities:
    """Where the sources are: only the operator-configured base URLs of these sections are ever called.

    `clients` are the worker's shared ones (`OutsideClients`); without them this object builds its
    own, once, for the sources these sections configure (closed by `aclose`).
    """

    def __init__(
        self,
        evidence: EvidenceStore,
        *,
        pagerduty: PagerDutySettings | None = None,
        opsgenie: OpsgenieSettings | None = None,
        jsm: JsmSettings | None = None,
        slack: SlackSettings | None = None,
        alertmanager: AlertmanagerSettings | None = None,
        http: HttpSettings | None = None,
        clients: OutsideClients | None = None,
    ) -> None:
        self._evidence = evidence
        self._pagerduty = pagerduty or PagerDutySettings()
        self._opsgenie = opsgenie or OpsgenieSettings()
        self._jsm = jsm or JsmSettings()
        self._slack = slack or SlackSettings()
        self._alertmanager = alertmanager or AlertmanagerSettings()
        self._owned = clients is None
        self._clients = clients or OutsideClients.configured(
            pagerduty=self._pagerduty, opsgenie=self._opsgenie, jsm=self._jsm, slack=self._slack, http=http
        )
        # The API clients are plain wrappers (a base URL, a header): built once too, for what is configured.
        token, key, bot = (
            reveal(self._pagerduty.api_token),
            reveal(self._opsgenie.api_key),
            reveal(self._slack.bot_token),
        )
        c = self._clients
        self._pd = PagerDutyClient(self._pagerduty.api_url, token, c.pagerduty) if token and c.pagerduty else None
        self._og = OpsgenieClient(self._opsgenie.api_url, key, c.opsgenie) if key and c.opsgenie else None
        self._sl = SlackClient(self._slack.api_url, bot, c.slack) if bot and c.slack else None
        jsm_token, j = reveal(self._jsm.api_token), self._jsm
        self._jsm_client = (
            JsmOpsClient(j.api_url, j.cloud_id, j.email, jsm_token, c.jsm)
            if j.cloud_id and j.email and jsm_token and c.jsm
            else None
        )

    async def aclose(self) -> None:
        """Close the clients this object built itself (the worker closes its shared ones)."""
        if self._owned:
            await self._clients.aclose()

    def unreachable(self) -> dict[str, str]:
        """The sources this worker has no settings for (source → which settings): the workflow does not
        schedule their gathers at all (resolve_team hands this over in the team's settings)."""
        clients = {
            EvidenceSource.PAGERDUTY: self._pd,
            EvidenceSource.OPSGENIE: self._og,
            EvidenceSource.JSM: self._jsm_client,
            EvidenceSource.SLACK: self._sl,
        }
        return {source.value: UNSET[source] for source, client in clients.items() if client is None}

    async def _status(
        self,
        input: GatherInput | GatherAlertsInput | GatherSlackInput,
        source: EvidenceSource,
        state: GatherState,
        detail: str | None = None,
        last: list[TimelineEntry] | None = None,
    ) -> GatherResult:
        """The source's status, with `last` (entries not stored yet) in the same transaction."""
        status = SourceStatus(source=source, incident_id=input.incident_id, state=state, detail=detail)
        entries = await self._evidence.record_gather(input.postmortem_id, status, last or [], datetime.now(UTC))
        return GatherResult(source=source, state=state, entries=entries, detail=detail)

    async def _paged(
        self, input: GatherInput, source: EvidenceSource, phases: list[tuple[Fetch, Convert]]
    ) -> GatherResult:
        details = activity.info().heartbeat_details
        resume: dict[str, Any] = (
            details[0] if details and isinstance(details[0], dict) else {"phase": 0, "cursor": None}
        )
        if not details:  # so a draft written before we finish says this source is on its way
            await self._status(input, source, GatherState.PENDING)
        try:
            for index in range(int(resume.get("phase", 0)), len(phases)):
                fetch, convert = phases[index]
                cursor = resume.get("cursor") if index == resume.get("phase", 0) else None
                while True:
                    page = await fetch(cursor)
                    entries = [entry for item in page.items for entry in convert(item)]
                    await self._evidence.add_entries(input.postmortem_id, entries)
                    cursor = page.next_cursor
                    activity.heartbeat({"phase": index if cursor else index + 1, "cursor": cursor})
                    if cursor is None:
                        break
        except UpstreamError as exc:
            if exc.permanent:
                return await self._status(input, source, GatherState.FAILED, str(exc))
            await self._status(input, source, GatherState.PENDING, f"retrying: {exc}")
            raise activity_error(exc, "UpstreamUnavailable") from exc
        return await self._status(input, source, GatherState.COMPLETE)

    @activity.defn(name="gather_pagerduty")
    async def gather_pagerduty(self, input: GatherInput) -> GatherResult:
        client = self._pd
        if client is None:
            return await self._status(
                input, EvidenceSource.PAGERDUTY, GatherState.NOT_CONFIGURED, UNSET[EvidenceSource.PAGERDUTY]
            )
        incident = input.incident_id

        async def notes(_: str | None) -> Page[dict[str, Any]]:
            return Page(items=await client.notes(incident), next_cursor=None)

        return await self._paged(
            input,
            EvidenceSource.PAGERDUTY,
            [
                (lambda cursor: client.log_entries_page(incident, cursor), _one(from_pagerduty_log_entry, incident)),
                (lambda cursor: client.alerts_page(incident, cursor), _one(from_pagerduty_alert, incident)),
                (notes, _one(from_pagerduty_note, incident)),
            ],
        )

    @activity.defn(name="gather_opsgenie")
    async def gather_opsgenie(self, input: GatherInput) -> GatherResult:
        client = self._og
        if client is None:
            return await self._status(
                input, EvidenceSource.OPSGENIE, GatherState.NOT_CONFIGURED, UNSET[EvidenceSource.OPSGENIE]
            )
        alert = input.incident_id
        return await self._paged(
            input,
            EvidenceSource.OPSGENIE,
            [
                (lambda cursor: client.logs_page(alert, cursor), _one(from_opsgenie_log, alert)),
                (lambda cursor: client.notes_page(alert, cursor), _one(from_opsgenie_note, alert)),
            ],
        )

    @activity.defn(name="gather_jsm")
    async def gather_jsm(self, input: GatherInput) -> GatherResult:
        """A JSM Operations alert's activity log and notes (the Ops REST API, every page of each)."""
        client = self._jsm_client
        if client is None:
            return await self._status(
                input,
                EvidenceSource.JSM,
                GatherState.NOT_CONFIGURED,
                UNSET[EvidenceSource.JSM],
            )
        alert = input.incident_id
        return await self._paged(
            input,
            EvidenceSource.JSM,
            [
                (lambda cursor: client.logs_page(alert, cursor), _one(from_jsm_log, alert)),
                (lambda cursor: client.notes_page(alert, cursor), _one(from_jsm_note, alert)),
            ],
        )

    @activity.defn(name="gather_alertmanager")
    async def gather_alertmanager(self, input: GatherAlertsInput) -> GatherResult:
        """Alerts already received whose labels name the incident's service, inside its window."""
        if input.end is None:
            return await self._status(input, EvidenceSource.ALERTMANAGER, GatherState.COMPLETE, "no incident window")
        margin = timedelta(minutes=self._alertmanager.margin_minutes)
        start = (input.start or input.end) - margin
        services = {name.casefold() for name in input.services}
        matched = [
            alert
            for alert in await self._evidence.alerts_between(start, input.end)
            if self._matches(alert["labels"], services, input.label_matchers)
        ]
        entries = [entry for alert in matched for entry in from_alert_event(alert, input.incident_id)]
        return await self._status(input, EvidenceSource.ALERTMANAGER, GatherState.COMPLETE, last=entries)

    def _matches(self, labels: dict[str, str], services: set[str], matchers: list[dict[str, str]]) -> bool:
        if any(labels.get(name, "").casefold() in services for name in self._alertmanager.service_labels):
            return True
        return any(matcher and all(labels.get(k) == v for k, v in matcher.items()) for matcher in matchers)

    @activity.defn(name="gather_slack")
    async def gather_slack(self, input: GatherSlackInput) -> GatherResult:
        channels = sorted({m.group(1) for link in input.links if (m := SLACK_CHANNEL.search(link))})
        if not channels:
            return await self._status(
                input, EvidenceSource.SLACK, GatherState.NOT_CONFIGURED, "the incident names no Slack channel"
            )
        client = self._sl
        if client is None:
            return await self._status(
                input, EvidenceSource.SLACK, GatherState.NOT_CONFIGURED, UNSET[EvidenceSource.SLACK]
            )
        margin = timedelta(minutes=self._alertmanager.margin_minutes)
        oldest = (input.start - margin).timestamp() if input.start else None
        latest = (input.end + margin).timestamp() if input.end else None

        def history(channel: str) -> Fetch:
            return lambda cursor: client.conversations_history_page(channel, cursor, oldest, latest)

        def convert(channel: str) -> Convert:
            return lambda item: [e] if (e := from_slack_message(item, channel, input.incident_id)) else []

        return await self._paged(
            GatherInput(postmortem_id=input.postmortem_id, incident_id=input.incident_id),
            EvidenceSource.SLACK,
            [(history(channel), convert(channel)) for channel in channels],
        )
