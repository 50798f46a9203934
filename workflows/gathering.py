"""Evidence gathering: every source at once, the draft written at the team's deadline with what came in.

A source that cannot be read for good (a revoked token, a channel the bot is not in) is named in the
draft's timeline by the activity, and is a problem of the report (step `gather`, target the source).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.gather import (
        GatherActivities,
        GatherAlertsInput,
        GatherInput,
        GatherResult,
        GatherSlackInput,
    )
    from postmortem.evidence.models import EvidenceSource, GatherState
    from postmortem.incident.teams import TeamSettings
    from postmortem.models import Incident, Source
    from postmortem.workflows.options import GATHER_RETRY
    from postmortem.workflows.side_effects import upstream_words

Handles = dict[EvidenceSource, "asyncio.Task[GatherResult]"]


JSM_PATCH = "gather-jsm"
OWN_GATHERS: dict[EvidenceSource, Any] = {
    EvidenceSource.PAGERDUTY: GatherActivities.gather_pagerduty,
    EvidenceSource.OPSGENIE: GatherActivities.gather_opsgenie,
    EvidenceSource.JSM: GatherActivities.gather_jsm,
}


def own_source(incident: Incident) -> EvidenceSource:
    """Where an incident's own evidence is read: its paging source's REST API.

    A JSM incident's is the JSM Operations API (behind JSM_PATCH; before it, every source but
    PagerDuty was read from Opsgenie). `workflow.patched` is asked for JSM incidents only, so the
    histories of the others carry no marker and replay as they were."""
    if incident.source == Source.PAGERDUTY:
        return EvidenceSource.PAGERDUTY
    if incident.source == Source.JSM and workflow.patched(JSM_PATCH):
        return EvidenceSource.JSM
    return EvidenceSource.OPSGENIE


def sources_of(incident: Incident) -> list[EvidenceSource]:
    """The sources gathered for an incident, in the order they are started."""
    return [own_source(incident), EvidenceSource.ALERTMANAGER, EvidenceSource.SLACK]


def unreachable(team: TeamSettings) -> dict[EvidenceSource, str]:
    """The sources the worker has no settings for (and which settings), as resolve_team recorded them:
    never scheduled, their not-configured state recorded by the draft instead. Empty for a team
    resolved before this was known, so such a history replays as it ran."""
    return {EvidenceSource(source): why for source, why in (team.unreachable_sources or {}).items()}


def start_source(
    source: EvidenceSource, postmortem_id: str, incident: Incident, team: TeamSettings, *, local: bool = False
) -> asyncio.Task[GatherResult]:
    """`local` (patch lean-draft): Alertmanager's alerts are the store's own (received by webhook), so they
    are read in the worker as a local activity, with no round trip to the server."""
    options = workflow.ActivityConfig(
        start_to_close_timeout=timedelta(minutes=30),
        schedule_to_close_timeout=timedelta(hours=24),
        heartbeat_timeout=timedelta(seconds=team.gather_heartbeat_seconds),
        retry_policy=GATHER_RETRY,
    )
    end = incident.resolved_at or workflow.now()
    if source == EvidenceSource.ALERTMANAGER:
        alerts = GatherAlertsInput(
            postmortem_id=postmortem_id,
            incident_id=incident.id,
            services=[service.name for service in incident.services],
            label_matchers=team.alert_matchers,
            start=incident.created_at,
            end=end,
        )
        if local:
            return workflow.start_local_activity_method(
                GatherActivities.gather_alertmanager,
                alerts,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=GATHER_RETRY,
            )
        return workflow.start_activity_method(GatherActivities.gather_alertmanager, alerts, **options)
    if source == EvidenceSource.SLACK:
        slack = GatherSlackInput(
            postmortem_id=postmortem_id,
            incident_id=incident.id,
            links=[link.url for link in incident.links],
            start=incident.created_at,
            end=end,
        )
        return workflow.start_activity_method(GatherActivities.gather_slack, slack, **options)
    own = OWN_GATHERS.get(source, GatherActivities.gather_opsgenie)
    return workflow.start_activity_method(
        own, GatherInput(postmortem_id=postmortem_id, incident_id=incident.id), **options
    )


async def gather(
    postmortem_id: str, incident: Incident, team: TeamSettings, *, lean: bool = False
) -> tuple[Handles, Handles]:
    """Start every source at once; (those done by the team's deadline, those still running). `lean`
    (the first draft, patch lean-draft): the unreachable sources are not started at all."""
    skipped = unreachable(team) if lean else {}
    handles = {
        source: start_source(source, postmortem_id, incident, team, local=lean)
        for source in sources_of(incident)
        if source not in skipped
    }
    _, pending = await workflow.wait(list(handles.values()), timeout=team.gather_deadline_seconds)
    done = {source: handle for source, handle in handles.items() if handle not in pending}
    late = {source: handle for source, handle in handles.items() if handle in pending}
    return done, late


def failure(handle: asyncio.Task[GatherResult]) -> str | None:
    """Why a finished gather could not read its source for good, in the source's words (None: it could)."""
    if handle.cancelled():
        return None
    error = handle.exception()
    if isinstance(error, ActivityError):
        return upstream_words(error)
    if error is not None:
        return str(error)
    result = handle.result()
    if result.state == GatherState.FAILED:
        return result.detail or f"{result.source.value} could not be read"
    return None
