"""A draft schedules nothing that cannot do anything (lean-draft): a source or invite channel the worker has
no settings for is never an activity, and the report still says which settings each source lacks."""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from postmortem.activities.gather import UNSET
from postmortem.app.settings import Settings
from postmortem.app.worker import build_worker
from postmortem.config import PagerDutySettings, SlackSettings, SmtpSettings
from postmortem.evidence.models import EvidenceSource, GatherState
from postmortem.incident.teams import TeamsConfig
from postmortem.models import Status
from postmortem.store.store import Store
from postmortem.workflows.inputs import PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.support import eventually


async def _drafted_history(
    env: WorkflowEnvironment, store: Store, settings: Settings, *, until: str | None = None, deadline: int = 300
) -> tuple[list[str], int]:
    """(the activities scheduled on the server, the local activities run) once the meeting is planned and
    every activity is done (or, `until`, that activity is scheduled: the others may still be retrying)."""
    incident_id = f"PLEAN{uuid.uuid4().hex[:6].upper()}"
    task_queue = f"lean-{uuid.uuid4().hex}"
    async with build_worker(
        env.client,
        task_queue=task_queue,
        store=store,
        teams=TeamsConfig(gather_deadline_seconds=deadline),
        settings=settings,
    ):
        handle = await env.client.start_workflow(
            PostmortemWorkflow.run,
            PostmortemWorkflowInput(postmortem_id=f"pagerduty-{incident_id}", event=pagerduty_event(incident_id)),
            id=f"postmortem-pagerduty-{incident_id}",
            task_queue=task_queue,
        )

        async def settled() -> bool:
            if await handle.query(PostmortemWorkflow.meeting) is None:
                return False
            if until is not None:
                events = (await handle.fetch_history()).events
                return any(e.activity_task_scheduled_event_attributes.activity_type.name == until for e in events)
            idle = not (await handle.describe()).raw_description.pending_activities
            return idle and await handle.query(PostmortemWorkflow.status) == Status.DRAFT

        await eventually(settled)
        history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    local = sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )
    statuses = {s.source: s for s in await store.evidence.statuses(f"pagerduty-{incident_id}")}
    assert statuses[EvidenceSource.ALERTMANAGER].state == GatherState.COMPLETE
    for source in (EvidenceSource.PAGERDUTY, EvidenceSource.SLACK):
        if f"gather_{source.value}" not in scheduled:  # said on the report as its gather would have
            assert statuses[source].state == GatherState.NOT_CONFIGURED
            assert statuses[source].detail == UNSET[source]
    return scheduled, local


async def test_with_nothing_configured_only_the_draft_is_a_round_trip(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store
) -> None:
    scheduled, local = await _drafted_history(time_skipping_env, sqlite_store, Settings())
    # The team, Alertmanager's stored alerts and the meeting's plan (no calendar) ran in the worker;
    # PagerDuty and Slack (no token) and both invite channels were never scheduled.
    assert scheduled == ["draft_postmortem"]
    assert local == 3


async def test_what_is_configured_is_scheduled(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> None:
    settings = Settings(
        pagerduty=PagerDutySettings(api_url="http://127.0.0.1:9/", api_token="t"),
        slack=SlackSettings(api_url="http://127.0.0.1:9/api", bot_token="xoxb-t"),
        smtp=SmtpSettings(host="127.0.0.1", port=9, starttls=False, sender="postmortem@example.com"),
    )
    scheduled, _ = await _drafted_history(time_skipping_env, sqlite_store, settings, until="send_invite", deadline=1)
    # PagerDuty on a closed port retries past the deadline; the draft does not wait for it.
    assert {"gather_pagerduty", "gather_slack", "draft_postmortem", "send_invite"} <= set(scheduled)
    assert "gather_opsgenie" not in scheduled and "resolve_team" not in scheduled
