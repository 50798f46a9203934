"""PostmortemWorkflow: the lifecycle of one report, from a resolved incident to its draft.

Deterministic orchestration only: every side effect is an activity, every decision is pure code.
Changes for runs already in flight go behind `workflow.patched` (see tests/histories).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.draft import DraftActivities, DraftPostmortemInput
    from postmortem.activities.gather import GatherActivities, GatherAlertsInput, GatherInput, GatherSlackInput
    from postmortem.activities.meeting import (
        MeetingActivities,
        PlanMeetingInput,
        ReviseMeetingInput,
        SendInviteInput,
    )
    from postmortem.meeting import Meeting, MeetingStatus
    from postmortem.activities.refresh import RefreshActivities, RefreshReportInput
    from postmortem.activities.team import ResolveTeamInput, TeamActivities
    from postmortem.evidence import EvidenceSource
    from postmortem.models import Incident, PolicyOutcome, Source, Status
    from postmortem.policy import decide
    from postmortem.teams import TeamSettings
    from postmortem.workflows.identity import STATUS_ATTRIBUTE
    from postmortem.workflows.inputs import (
        CancelRequest,
        PostmortemWorkflowInput,
        PostmortemWorkflowResult,
        RescheduleRequest,
    )

STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# Sources that are down are retried with backoff for a day; the draft does not wait that long.
GATHER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
GATHER_PATCH = "gather-evidence"
MEETING_PATCH = "review-meeting"
# Invites are retried (SMTP relay or calendar down) for up to a day.
DELIVERY_OPTIONS = dict(
    start_to_close_timeout=timedelta(minutes=1),
    schedule_to_close_timeout=timedelta(days=1),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10)),
)
LATEST_RESCHEDULE = timedelta(days=90)


@workflow.defn(name="PostmortemWorkflow")
class PostmortemWorkflow:
    def __init__(self) -> None:
        self._status: Status | None = None
        self._closed = False
        self._late_sources: asyncio.Task[None] | None = None
        self._postmortem_id: str | None = None
        self._meeting: Meeting | None = None
        self._meeting_lock = asyncio.Lock()

    @workflow.run
    async def run(self, input: PostmortemWorkflowInput) -> PostmortemWorkflowResult:
        incident = input.event.incident
        self._postmortem_id = input.postmortem_id
        team = await workflow.execute_activity_method(
            TeamActivities.resolve_team,
            ResolveTeamInput(incident=incident.summary()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STEP_RETRY,
        )
        decision = decide([incident], team.policy)
        late: dict[EvidenceSource, asyncio.Task] = {}
        if decision.outcome != PolicyOutcome.SKIP and workflow.patched(GATHER_PATCH):
            late = await self._gather(input.postmortem_id, incident.summary(), team)
        drafted = await workflow.execute_activity_method(
            DraftActivities.draft_postmortem,
            DraftPostmortemInput(
                postmortem_id=input.postmortem_id,
                workflow_id=workflow.info().workflow_id,
                incident=incident,
                team=team,
                decision=decision,
                now=workflow.now(),
                still_gathering=list(late),
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=STEP_RETRY,
        )
        self._set_status(drafted.status)
        if late:
            self._late_sources = asyncio.create_task(
                self._complete_when_gathered(input.postmortem_id, list(late.values()))
            )
        if drafted.status == Status.SKIPPED:
            return PostmortemWorkflowResult(postmortem_id=drafted.postmortem_id, status=drafted.status)
        if workflow.patched(MEETING_PATCH):
            async with self._meeting_lock:
                if not self._closed:
                    self._meeting = await workflow.execute_activity_method(
                        MeetingActivities.plan_meeting,
                        PlanMeetingInput(
                            postmortem_id=input.postmortem_id, title=incident.title, severity=incident.severity,
                            resolved_at=incident.resolved_at, language=team.language, team=team, now=workflow.now(),
                        ),
                        start_to_close_timeout=timedelta(minutes=2),
                        retry_policy=STEP_RETRY,
                    )
                    await self._deliver()
        # The review steps (a later issue) take over from here; until then the report waits as a draft.
        await workflow.wait_condition(lambda: self._closed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PostmortemWorkflowResult(postmortem_id=drafted.postmortem_id, status=self._status or drafted.status)

    async def _deliver(self) -> None:
        """Send the current revision of the invite on every channel (each is a no-op if unconfigured)."""
        assert self._meeting is not None and self._postmortem_id is not None
        await asyncio.gather(*(
            workflow.execute_activity_method(
                MeetingActivities.send_invite,
                SendInviteInput(postmortem_id=self._postmortem_id, sequence=self._meeting.sequence, channel=channel,
                                now=workflow.now()),
                **DELIVERY_OPTIONS,
            )
            for channel in ("email", "caldav")
        ))

    async def _revise(self, **change: object) -> Meeting:
        assert self._meeting is not None and self._postmortem_id is not None
        self._meeting = await workflow.execute_activity_method(
            MeetingActivities.revise_meeting,
            ReviseMeetingInput(postmortem_id=self._postmortem_id, from_sequence=self._meeting.sequence,
                               now=workflow.now(), **change),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=STEP_RETRY,
        )
        await self._deliver()
        return self._meeting

    @workflow.update
    async def reschedule(self, request: RescheduleRequest) -> Meeting:
        async with self._meeting_lock:
            return await self._revise(start=request.start)

    @reschedule.validator
    def _check_reschedule(self, request: RescheduleRequest) -> None:
        if self._meeting is None:
            raise ValueError("no review meeting has been scheduled for this post-mortem yet")
        if self._meeting.status == MeetingStatus.CANCELLED or self._closed:
            raise ValueError("the review meeting was cancelled")
        if request.start <= workflow.now():
            raise ValueError(f"the new time {request.start.isoformat()} is in the past")
        if request.start > workflow.now() + LATEST_RESCHEDULE:
            raise ValueError("the new time is more than 90 days away")

    @workflow.update
    async def cancel(self, request: CancelRequest) -> Meeting | None:
        """The post-mortem is being deleted: cancel the meeting (METHOD:CANCEL) and finish."""
        async with self._meeting_lock:
            if self._meeting is not None and self._meeting.status != MeetingStatus.CANCELLED:
                await self._revise(cancel=True)
            self._closed = True
            return self._meeting

    @workflow.query
    def meeting(self) -> Meeting | None:
        return self._meeting

    async def _gather(
        self, postmortem_id: str, incident: Incident, team: TeamSettings
    ) -> dict[EvidenceSource, asyncio.Task]:
        """Start every source at once; return those still running at the team's deadline."""
        options = dict(
            start_to_close_timeout=timedelta(minutes=30),
            schedule_to_close_timeout=timedelta(hours=24),
            heartbeat_timeout=timedelta(seconds=team.gather_heartbeat_seconds),
            retry_policy=GATHER_RETRY,
        )
        own = GatherInput(postmortem_id=postmortem_id, incident_id=incident.id)
        own_source, source_gather = (
            (EvidenceSource.PAGERDUTY, GatherActivities.gather_pagerduty)
            if incident.source == Source.PAGERDUTY
            else (EvidenceSource.OPSGENIE, GatherActivities.gather_opsgenie)
        )
        handles = {
            own_source: workflow.start_activity_method(source_gather, own, **options),
            EvidenceSource.ALERTMANAGER: workflow.start_activity_method(
                GatherActivities.gather_alertmanager,
                GatherAlertsInput(
                    postmortem_id=postmortem_id, incident_id=incident.id,
                    services=[service.name for service in incident.services], label_matchers=team.alert_matchers,
                    start=incident.created_at, end=incident.resolved_at or workflow.now(),
                ),
                **options,
            ),
            EvidenceSource.SLACK: workflow.start_activity_method(
                GatherActivities.gather_slack,
                GatherSlackInput(
                    postmortem_id=postmortem_id, incident_id=incident.id, links=[link.url for link in incident.links],
                    start=incident.created_at, end=incident.resolved_at or workflow.now(),
                ),
                **options,
            ),
        }
        _, pending = await workflow.wait(list(handles.values()), timeout=team.gather_deadline_seconds)
        return {source: handle for source, handle in handles.items() if handle in pending}

    async def _complete_when_gathered(self, postmortem_id: str, late: list[asyncio.Task]) -> None:
        await workflow.wait(late)
        await workflow.execute_activity_method(
            RefreshActivities.refresh_report,
            RefreshReportInput(postmortem_id=postmortem_id),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=STEP_RETRY,
        )

    @workflow.query
    def status(self) -> Status | None:
        return self._status

    def _set_status(self, status: Status) -> None:
        self._status = status
        workflow.upsert_search_attributes([STATUS_ATTRIBUTE.value_set(status.value)])
