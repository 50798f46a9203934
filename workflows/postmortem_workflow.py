"""PostmortemWorkflow: the lifecycle of one report, from a resolved incident through evidence, draft,
review meeting, review and publication to its tickets and follow-up checks.

Deterministic orchestration only: every side effect is an activity, every decision is pure code.
Changes for runs already in flight go behind `workflow.patched` (see tests/histories).

Over 300 lines for now, on purpose: the workflow class, its Updates and the steps they drive are
one unit that replay tests pin down, and moving its code is left to the planned restructuring of
the workflow (its own issue), so the steps are moved once, together, with their histories checked.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.draft import DraftActivities, DraftPostmortemInput
    from postmortem.activities.gather import GatherActivities, GatherAlertsInput, GatherInput, GatherSlackInput
    from postmortem.activities.link import LinkActivities, LinkedIncident, LinkIncidentInput, RefreshIncidentInput
    from postmortem.activities.meeting import (
        MeetingActivities,
        PlanMeetingInput,
        ReviseMeetingInput,
        SendInviteInput,
    )
    from postmortem.activities.refresh import RefreshActivities, RefreshReportInput
    from postmortem.activities.review import NotifyInput, PublishInput, RecordReviewInput, ReviewActivities
    from postmortem.activities.team import ResolveTeamInput, TeamActivities
    from postmortem.activities.tickets import TicketActivities, TicketsInput
    from postmortem.evidence.models import EvidenceSource
    from postmortem.incident.policy import decide
    from postmortem.incident.teams import TeamSettings
    from postmortem.meeting.models import Meeting, MeetingStatus
    from postmortem.models import Incident, IncidentEvent, PolicyOutcome, Source, Status
    from postmortem.report.formatting import format_local
    from postmortem.review.lifecycle import Actor, Decision, Review, ReviewerState, Transition, TransitionRefused, check
    from postmortem.workflows.follow_up_workflow import FollowUpInput, FollowUpWorkflow
    from postmortem.workflows.identity import STATUS_ATTRIBUTE
    from postmortem.workflows.inputs import (
        CancelRequest,
        DecisionRequest,
        IncidentDelivery,
        LinkRequest,
        PostmortemWorkflowInput,
        PostmortemWorkflowResult,
        RescheduleRequest,
        SubmitRequest,
        TransitionRequest,
    )

STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# Sources that are down are retried with backoff for a day; the draft does not wait that long.
GATHER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
GATHER_PATCH = "gather-evidence"
MEETING_PATCH = "review-meeting"
LIFECYCLE_PATCH = "review-lifecycle"
MEETING_REMINDER_PATCH = "meeting-reminder"
# Invites are retried (SMTP relay or calendar down) for up to a day.
DELIVERY_OPTIONS = workflow.ActivityConfig(
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
        self._review: Review | None = None
        self._review_lock = asyncio.Lock()
        self._changed = False
        self._team: TeamSettings | None = None
        self._resolved_at: datetime | None = None
        self._submitted_at: datetime | None = None
        self._reminded: dict[str, datetime] = {}
        self._linked: set[tuple[str, str]] = set()
        self._background: list[asyncio.Task[None]] = []

    @workflow.run
    async def run(self, input: PostmortemWorkflowInput) -> PostmortemWorkflowResult:
        incident = input.event.incident
        self._postmortem_id = input.postmortem_id
        self._linked.add((incident.source.value, incident.id))
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
                delivery_id=input.delivery_id,
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=STEP_RETRY,
        )
        self._set_status(drafted.status)
        self._team, self._resolved_at = team, incident.resolved_at or workflow.now()
        if drafted.status == Status.DRAFT:
            self._review = Review(status=Status.DRAFT)
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
                            postmortem_id=input.postmortem_id,
                            title=incident.title,
                            severity=incident.severity,
                            resolved_at=incident.resolved_at,
                            language=team.language,
                            team=team,
                            now=workflow.now(),
                        ),
                        start_to_close_timeout=timedelta(minutes=2),
                        retry_policy=STEP_RETRY,
                    )
                    await self._deliver()
        if workflow.patched(LIFECYCLE_PATCH):
            await self._review_until_closed()
        else:
            await workflow.wait_condition(lambda: self._closed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PostmortemWorkflowResult(postmortem_id=drafted.postmortem_id, status=self._status or drafted.status)

    async def _deliver(self) -> None:
        """Send the current revision of the invite on every channel (each is a no-op if unconfigured)."""
        assert self._meeting is not None and self._postmortem_id is not None
        await asyncio.gather(
            *(
                workflow.execute_activity_method(
                    MeetingActivities.send_invite,
                    SendInviteInput(
                        postmortem_id=self._postmortem_id,
                        sequence=self._meeting.sequence,
                        channel=channel,
                        now=workflow.now(),
                    ),
                    **DELIVERY_OPTIONS,
                )
                for channel in ("email", "caldav")
            )
        )

    async def _revise(self, **change: object) -> Meeting:
        assert self._meeting is not None and self._postmortem_id is not None
        self._meeting = await workflow.execute_activity_method(
            MeetingActivities.revise_meeting,
            ReviseMeetingInput(
                postmortem_id=self._postmortem_id, from_sequence=self._meeting.sequence, now=workflow.now(), **change
            ),
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

    # Linked incidents ------------------------------------------------------------------------

    @workflow.update
    async def link_incident(self, request: LinkRequest) -> LinkedIncident:
        """Another incident belongs to this report: link it, recompute the metrics, gather its evidence."""
        assert self._postmortem_id is not None and self._team is not None
        self._linked.add((request.source.value, request.incident_id))
        try:
            linked = await workflow.execute_activity_method(
                LinkActivities.link_incident,
                LinkIncidentInput(
                    postmortem_id=self._postmortem_id,
                    source=request.source,
                    incident_id=request.incident_id,
                    now=workflow.now(),
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=STEP_RETRY,
            )
        except ActivityError:
            self._linked.discard((request.source.value, request.incident_id))
            raise
        late = await self._gather(self._postmortem_id, linked.incident, self._team)
        self._background.append(
            asyncio.create_task(self._complete_when_gathered(self._postmortem_id, list(late.values())))
        )
        return linked

    @link_incident.validator
    def _check_link(self, request: LinkRequest) -> None:
        if self._review is None or self._closed:
            raise ValueError("incidents can be linked once the draft exists, until the report is deleted")
        if request.actor.role not in ("editor", "reviewer", "admin"):
            raise TransitionRefused("linking incidents needs the editor role", 403)
        if (request.source.value, request.incident_id) in self._linked:
            raise ValueError(f"{request.source.value} incident {request.incident_id} is already linked here")

    @workflow.signal
    async def incident_updated(self, event: IncidentEvent) -> None:
        """A later webhook for a linked incident (its resolve): refresh its facts and the metrics.

        Sent before the inbox existed (the event carries its raw payload); kept for those histories."""
        await self._refresh_incident(event, None)

    @workflow.signal
    async def incident_delivered(self, delivery: IncidentDelivery) -> None:
        """The same, relayed from the inbox: the raw payload stays in the inbox entry `delivery_id`."""
        await self._refresh_incident(delivery.event, delivery.delivery_id)

    async def _refresh_incident(self, event: IncidentEvent, delivery_id: str | None) -> None:
        if self._postmortem_id is None:
            return
        await workflow.execute_activity_method(
            LinkActivities.refresh_incident,
            RefreshIncidentInput(
                postmortem_id=self._postmortem_id, incident=event.incident, now=workflow.now(), delivery_id=delivery_id
            ),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=STEP_RETRY,
        )

    # Review lifecycle ------------------------------------------------------------------------

    @workflow.query
    def review(self) -> Review | None:
        return self._review

    def _check(self, action: str, actor: Actor, reviewers: list[str] | None = None) -> None:
        if self._review is None:
            raise ValueError("the draft is not ready yet" if not self._closed else "this post-mortem is closed")
        check(self._review, action, actor, reviewers=reviewers)

    def _recheck(self, action: str, actor: Actor, reviewers: list[str] | None = None) -> None:
        """Validators of Updates accepted together all saw the same state; inside the lock the state may
        have moved on (two people clicked at once), so each handler checks again before changing anything."""
        try:
            self._check(action, actor, reviewers)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="TransitionRefused", non_retryable=True) from exc

    async def _transition(self, action: str, actor: Actor, to: Status, comment: str | None = None) -> Review:
        assert self._review is not None and self._postmortem_id is not None
        self._review.history.append(
            Transition(
                action=action,
                by=actor.name,
                at=workflow.now(),
                from_status=self._review.status,
                to_status=to,
                comment=comment,
            )
        )
        self._review.status = to
        publishing = to == Status.PUBLISHED
        if publishing:
            self._review.published_count += 1
            self._review.public_slug = self._review.public_slug or workflow.uuid4().hex
        await workflow.execute_activity_method(
            ReviewActivities.record_review,
            RecordReviewInput(postmortem_id=self._postmortem_id, review=self._review, now=workflow.now()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STEP_RETRY,
        )
        self._set_status(to)
        self._changed = True
        if publishing:
            try:
                await workflow.execute_activity_method(
                    ReviewActivities.publish_report,
                    PublishInput(
                        postmortem_id=self._postmortem_id,
                        published_count=self._review.published_count,
                        public_slug=self._review.public_slug,
                        slack_channel=self._team.slack_channel if self._team else None,
                        now=workflow.now(),
                    ),
                    **DELIVERY_OPTIONS,
                )
            except ActivityError as exc:  # e.g. Slack refused the channel: the report is published all the same
                workflow.logger.warning("publishing side effects failed for %s: %s", self._postmortem_id, exc.cause)
            await self._open_tickets()
            if self._review.published_count == 1 and self._team is not None:
                await workflow.start_child_workflow(
                    FollowUpWorkflow.run,
                    FollowUpInput(
                        postmortem_id=self._postmortem_id,
                        published_at=workflow.now(),
                        days=self._team.follow_up_days,
                        tracker=self._team.tracker,
                        accounts={k.casefold(): v for k, v in self._team.tracker_users.items()},
                        slack_channel=self._team.slack_channel,
                    ),
                    id=f"followup-{self._postmortem_id}",
                    parent_close_policy=ParentClosePolicy.ABANDON,
                )
        return self._review

    async def _open_tickets(self) -> None:
        """One ticket per action item, exactly once (the activity searches before it creates)."""
        if self._team is None or self._postmortem_id is None:
            return
        try:
            await workflow.execute_activity_method(
                TicketActivities.open_tickets,
                TicketsInput(
                    postmortem_id=self._postmortem_id,
                    tracker=self._team.tracker,
                    accounts={k.casefold(): v for k, v in self._team.tracker_users.items()},
                    now=workflow.now(),
                ),
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=self._team.gather_heartbeat_seconds),
                schedule_to_close_timeout=timedelta(days=1),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=10)),
            )
        except ActivityError as exc:
            workflow.logger.warning("tickets could not be opened for %s: %s", self._postmortem_id, exc.cause)

    @workflow.signal
    async def action_items_changed(self) -> None:
        """Items added after publishing get their tickets too."""
        if self._review is not None and self._review.status in (Status.PUBLISHED, Status.ARCHIVED):
            await self._open_tickets()

    @workflow.update
    async def submit(self, request: SubmitRequest) -> Review:
        async with self._review_lock:
            self._recheck("submit", request.actor, request.reviewers)
            assert self._review is not None
            self._review.reviewers = [ReviewerState(reviewer=r) for r in dict.fromkeys(request.reviewers)]
            self._submitted_at = workflow.now()
            return await self._transition("submit", request.actor, Status.IN_REVIEW)

    @submit.validator
    def _check_submit(self, request: SubmitRequest) -> None:
        self._check("submit", request.actor, request.reviewers)

    @workflow.update
    async def approve(self, request: DecisionRequest) -> Review:
        async with self._review_lock:
            self._recheck("approve", request.actor)
            assert self._review is not None
            state = self._review.reviewer(request.actor.name)
            assert state is not None
            state.decision, state.comment, state.decided_at = Decision.APPROVED, request.comment, workflow.now()
            if self._review.all_approved:
                return await self._transition("approve", request.actor, Status.PUBLISHED, request.comment)
            return await self._transition("approve", request.actor, Status.IN_REVIEW, request.comment)

    @approve.validator
    def _check_approve(self, request: DecisionRequest) -> None:
        self._check("approve", request.actor)

    @workflow.update
    async def request_changes(self, request: DecisionRequest) -> Review:
        async with self._review_lock:
            self._recheck("request_changes", request.actor)
            assert self._review is not None
            state = self._review.reviewer(request.actor.name)
            assert state is not None
            state.decision, state.comment, state.decided_at = (
                Decision.CHANGES_REQUESTED,
                request.comment,
                workflow.now(),
            )
            return await self._transition("request_changes", request.actor, Status.DRAFT, request.comment)

    @request_changes.validator
    def _check_request_changes(self, request: DecisionRequest) -> None:
        if not (request.comment or "").strip():
            raise ValueError("say what should change: a comment is required")
        self._check("request_changes", request.actor)

    @workflow.update
    async def publish(self, request: TransitionRequest) -> Review:
        async with self._review_lock:
            self._recheck("publish", request.actor)
            return await self._transition("publish", request.actor, Status.PUBLISHED)

    @publish.validator
    def _check_publish(self, request: TransitionRequest) -> None:
        self._check("publish", request.actor)

    @workflow.update
    async def unpublish(self, request: TransitionRequest) -> Review:
        async with self._review_lock:
            self._recheck("unpublish", request.actor)
            return await self._transition("unpublish", request.actor, Status.DRAFT)

    @unpublish.validator
    def _check_unpublish(self, request: TransitionRequest) -> None:
        self._check("unpublish", request.actor)

    @workflow.update
    async def archive(self, request: TransitionRequest) -> Review:
        async with self._review_lock:
            self._recheck("archive", request.actor)
            return await self._transition("archive", request.actor, Status.ARCHIVED)

    @archive.validator
    def _check_archive(self, request: TransitionRequest) -> None:
        self._check("archive", request.actor)

    async def _review_until_closed(self) -> None:
        """Wait for people, reminding them on durable timers until the report is published."""
        while not self._closed:
            due = self._next_reminder()
            timeout = max((due[0] - workflow.now()).total_seconds(), 0) if due else None
            try:
                await workflow.wait_condition(lambda: self._closed or self._changed, timeout=timeout)
            except TimeoutError:
                if due is not None:
                    await self._remind(*due[1:])
            self._changed = False

    def _next_reminder(self) -> tuple[datetime, str, list[str], str] | None:
        if self._review is None or self._team is None or self._resolved_at is None:
            return None
        team, review, owner = self._team, self._review, (self._team.owners or [self._team.organizer or ""])
        owner = [o for o in owner if o]
        candidates: list[tuple[datetime, str, list[str], str]] = []
        if review.status == Status.DRAFT and self._submitted_at is None and "submit" not in self._reminded:
            candidates.append(
                (
                    self._resolved_at + timedelta(hours=team.remind_submit_hours),
                    "submit",
                    owner,
                    "The post-mortem draft has not been submitted for review yet.",
                )
            )
        if review.status == Status.IN_REVIEW and self._submitted_at is not None:
            for state in review.reviewers:
                if state.decision == Decision.PENDING:
                    last = self._reminded.get(f"review:{state.reviewer}", self._submitted_at)
                    candidates.append(
                        (
                            last + timedelta(hours=team.remind_reviewers_hours),
                            f"review:{state.reviewer}",
                            [state.reviewer],
                            "A post-mortem is waiting for your review.",
                        )
                    )
        if review.status in (Status.DRAFT, Status.IN_REVIEW) and "deadline" not in self._reminded:
            candidates.append(
                (
                    self._resolved_at + timedelta(days=team.publish_deadline_days),
                    "deadline",
                    owner,
                    f"The post-mortem is not published {team.publish_deadline_days} days after resolution.",
                )
            )
        meeting = self._meeting
        if (
            meeting is not None
            and meeting.status != MeetingStatus.CANCELLED
            and workflow.patched(MEETING_REMINDER_PATCH)
        ):
            key = f"meeting:{meeting.sequence}"
            if key not in self._reminded and meeting.start > workflow.now():
                candidates.append(
                    (
                        max(meeting.start - timedelta(hours=24), workflow.now()),
                        key,
                        owner,
                        f"The post-mortem review meeting is at {meeting.start.isoformat()} "
                        f"({meeting.timezone} {format_local(meeting.start, meeting.timezone)}).",
                    )
                )
        return min(candidates, key=lambda c: c[0]) if candidates else None

    async def _remind(self, kind: str, recipients: list[str], text: str) -> None:
        assert self._postmortem_id is not None and self._team is not None
        now = workflow.now()
        occurrence = (
            len([k for k in self._reminded if k == kind])
            if not kind.startswith("review:")
            else int((now - (self._submitted_at or now)).total_seconds() // 3600)
        )
        self._reminded[kind] = now
        await workflow.execute_activity_method(
            ReviewActivities.notify,
            NotifyInput(
                postmortem_id=self._postmortem_id,
                key=f"{self._postmortem_id}:remind:{kind}:{occurrence}",
                recipients=recipients,
                subject=f"Reminder: post-mortem {self._postmortem_id}",
                text=" ".join(
                    [
                        *(
                            f"<@{self._team.slack_users[r.casefold()]}>"
                            for r in recipients
                            if r.casefold() in self._team.slack_users
                        ),
                        text,
                    ]
                ),
                slack_channel=self._team.slack_channel,
                now=now,
            ),
            **DELIVERY_OPTIONS,
        )

    async def _gather(
        self, postmortem_id: str, incident: Incident, team: TeamSettings
    ) -> dict[EvidenceSource, asyncio.Task]:
        """Start every source at once; return those still running at the team's deadline."""
        options = workflow.ActivityConfig(
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
                    postmortem_id=postmortem_id,
                    incident_id=incident.id,
                    services=[service.name for service in incident.services],
                    label_matchers=team.alert_matchers,
                    start=incident.created_at,
                    end=incident.resolved_at or workflow.now(),
                ),
                **options,
            ),
            EvidenceSource.SLACK: workflow.start_activity_method(
                GatherActivities.gather_slack,
                GatherSlackInput(
                    postmortem_id=postmortem_id,
                    incident_id=incident.id,
                    links=[link.url for link in incident.links],
                    start=incident.created_at,
                    end=incident.resolved_at or workflow.now(),
                ),
                **options,
            ),
        }
        _, pending = await workflow.wait(list(handles.values()), timeout=team.gather_deadline_seconds)
        return {source: handle for source, handle in handles.items() if handle in pending}

    async def _complete_when_gathered(self, postmortem_id: str, late: list[asyncio.Task]) -> None:
        if not late:
            # Nothing came in late (a linked incident gathered in time): no refresh, as before, when
            # `workflow.wait([])` raised inside this task and its error was never retrieved.
            return
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
