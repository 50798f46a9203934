"""PostmortemWorkflow: the lifecycle of one report, from a resolved incident through evidence, draft,
review meeting, review and publication to its tickets and follow-up checks.

Deterministic orchestration only: every side effect is an activity, every rule is in
`postmortem.review.lifecycle`. The state is one object (`workflows/state.py`) built by
`@workflow.init`. Update handlers check, record the decision (`record_review`) and return; what a
decision implies (publishing, tickets, the follow-up child, deliveries, retries) are steps of
`run()`'s own loop (`workflows/steps.py`), and a side effect that fails for good is a problem of
the report, never its end (`workflows/side_effects.py`). After ARCHIVED or a delete the run
completes; a long history continues as new with the state.

Changes for runs already in flight go behind `workflow.patched` (see tests/histories): LIFECYCLE_V2
is read at the start of `run()`, and runs recorded before it keep their old path.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import postmortem.workflows.drafting as drafting
    import postmortem.workflows.gathering as gathering
    import postmortem.workflows.meetings as meetings
    import postmortem.workflows.reminders as reminders
    from postmortem.activities.link import LinkActivities, LinkedIncident, LinkIncidentInput, RefreshIncidentInput
    from postmortem.meeting.models import Meeting, MeetingStatus
    from postmortem.meeting.scheduling import outside_working_hours
    from postmortem.models import IncidentEvent, Status
    from postmortem.review import lifecycle
    from postmortem.review.lifecycle import Actor, Review, TransitionRefused
    from postmortem.review.notices import NoticeKind, Say
    from postmortem.review.problems import Problem
    from postmortem.workflows.identity import STATUS_ATTRIBUTE
    from postmortem.workflows.inputs import (
        ActionItemEdited,
        CancelRequest,
        CommentPosted,
        DecisionRequest,
        DocumentEdited,
        IncidentDelivery,
        LinkRequest,
        PostmortemWorkflowInput,
        PostmortemWorkflowResult,
        RescheduleRequest,
        RetryProblemRequest,
        ReviewersRequest,
        SectionsRedrafted,
        SubmitRequest,
        TransitionRequest,
    )
    from postmortem.workflows.options import CANCEL_DELIVERY_OPTIONS, LATEST_RESCHEDULE, STEP_RETRY
    from postmortem.workflows.side_effects import SideEffects, refused
    from postmortem.workflows.state import (
        FollowUpStep,
        InviteStep,
        NarrativeStep,
        NotifyStep,
        PeopleNoticeStep,
        PlanMeetingStep,
        PostmortemState,
        ProblemEntry,
        PublishStep,
        PushTicketStep,
        RefreshIncidentStep,
        Step,
        TicketsStep,
    )
    from postmortem.workflows.steps import NOTIFY_PATCH, Steps, record_review

MEETING_PATCH = "review-meeting"
LIFECYCLE_PATCH = "review-lifecycle"
MEETING_REMINDER_PATCH = "meeting-reminder"
# One state object, decisions recorded and carried out by run()'s loop, problems instead of failures,
# completion after ARCHIVED, continue-as-new.
LIFECYCLE_V2 = "lifecycle-v2"
# Runs from before LIFECYCLE_V2: a side effect failing for good from now on is a problem too.
PROBLEMS_PATCH = "side-effect-problems"
# Everyone who acted in the incident (from the gathered evidence) is invited, not only the incident's assignees.
RESPONDERS_PATCH = "responders-attend"
# Status, owner and due date changed here are pushed to the item's ticket.
TICKET_PUSH_PATCH = "ticket-push"


@workflow.defn(name="PostmortemWorkflow")
class PostmortemWorkflow:
    @workflow.init
    def __init__(self, input: PostmortemWorkflowInput) -> None:
        self._input = input
        self._state = state = input.state or PostmortemState(postmortem_id=input.postmortem_id)
        self._started = False  # run() has begun (signals before it found nothing to refresh)
        self._changed = False  # a decision moved the review: the next reminder is computed again
        self._meeting_lock = asyncio.Lock()
        self._review_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []  # gathers still running in the background
        self._effects = SideEffects(
            state.problems,
            postmortem_id=input.postmortem_id,
            owners=lambda: state.owners,
            slack_channel=lambda: state.team.slack_channel if state.team else None,
            survive=lambda: self._v2() or workflow.patched(PROBLEMS_PATCH),
        )
        self._steps = Steps(state, self._effects)

    @staticmethod
    def _v2() -> bool:
        """Memoized by Temporal per run; never called from a validator or query (they cannot patch)."""
        return workflow.patched(LIFECYCLE_V2)

    @workflow.run
    async def run(self, input: PostmortemWorkflowInput) -> PostmortemWorkflowResult:
        v2, state = self._v2(), self._state
        self._started = True
        if state.started:  # continued as new: the draft and the meeting exist, the review goes on
            if state.status is not None:
                self._set_status(state.status)
            await self._review_loop(v2)
            return await self._result(input.postmortem_id)
        incident = input.event.incident
        state.link(incident.source.value, incident.id)
        first = await drafting.draft(input)
        drafted = first.result
        self._set_status(drafted.status)
        state.team, state.resolved_at = first.team, incident.resolved_at or workflow.now()
        if drafted.responders and (first.lean or workflow.patched(RESPONDERS_PATCH)):
            state.team = first.team.model_copy(update={"responders": drafted.responders})
        if drafted.status == Status.DRAFT:
            state.review = Review(status=Status.DRAFT)
        if v2:
            await self._steps.gathered(first.done, incident.summary())
        if drafting.wants_narrative(first) and workflow.patched(drafting.NARRATIVE_PATCH):
            await drafting.narrate(
                input.postmortem_id, NarrativeStep(redact=first.team.narrative_redact), self._effects
            )
        if first.late:
            late = self._steps.late_gathers(first.late, incident.summary(), record=v2)
            self._tasks.append(asyncio.create_task(late))
        if drafted.status == Status.SKIPPED:
            return PostmortemWorkflowResult(postmortem_id=drafted.postmortem_id, status=drafted.status)
        if v2 and not drafted.created and drafted.status in (Status.PUBLISHED, Status.ARCHIVED):
            # A new resolve of an incident whose report an earlier run finished: nothing to do again.
            return PostmortemWorkflowResult(postmortem_id=drafted.postmortem_id, status=drafted.status)
        if first.lean or workflow.patched(MEETING_PATCH):
            async with self._meeting_lock:
                await self._steps.plan_meeting(PlanMeetingStep(incident=incident.summary()))
        state.started = True
        if first.lean or workflow.patched(LIFECYCLE_PATCH):
            await self._review_loop(v2)
        else:
            await workflow.wait_condition(lambda: state.closed)
        return await self._result(drafted.postmortem_id)

    async def _result(self, postmortem_id: str) -> PostmortemWorkflowResult:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PostmortemWorkflowResult(postmortem_id=postmortem_id, status=self._state.status or Status.DRAFT)

    # The run's loop ---------------------------------------------------------------------------

    async def _review_loop(self, v2: bool) -> None:
        """Carry out the steps decisions left, remind people on durable timers, and end when the
        report is archived or deleted (continuing as new when the history is long)."""
        state = self._state
        while not state.closed:
            due = reminders.next_reminder(
                state, workflow.now(), meeting_reminders=lambda: v2 or workflow.patched(MEETING_REMINDER_PATCH)
            )
            timeout = max((due.due - workflow.now()).total_seconds(), 0) if due else None
            try:
                await workflow.wait_condition(
                    lambda: state.closed or self._changed or bool(state.steps) or (v2 and self._may_continue()),
                    timeout=timeout,
                )
            except TimeoutError:
                if due is not None and workflow.patched(NOTIFY_PATCH):
                    await self._remind(v2)
                elif due is not None:
                    notice = reminders.reminder_notice(state, due, workflow.now())
                    await self._steps.notify(NotifyStep(target=f"reminder {due.kind}", notice=notice))
            self._changed = False
            while state.steps and not state.closed:
                await self._steps.run(state.steps[0])
                state.steps.pop(0)
            if not v2:
                continue
            if state.status == Status.ARCHIVED and not state.steps:
                await workflow.wait_condition(lambda: all(task.done() for task in self._tasks))
                return
            if self._may_continue():
                workflow.continue_as_new(self._input.model_copy(update={"state": state}))

    async def _remind(self, v2: bool) -> None:
        """Every reminder due now, folded into one message per person (a backfilled report, resolved
        days ago, has several due the moment it is drafted)."""
        state, now = self._state, workflow.now()
        due = reminders.due_reminders(
            state, now, meeting_reminders=lambda: v2 or workflow.patched(MEETING_REMINDER_PATCH)
        )
        for kinds, notice in reminders.folded_notices(state, due, now):
            await self._steps.notify_people(PeopleNoticeStep(target=f"reminder {kinds}", notice=notice))

    def _may_continue(self) -> bool:
        """The history is long, and nothing is in flight that a new run would not know of."""
        info = workflow.info()
        long = info.get_current_history_length() >= self._input.history_threshold or info.is_continue_as_new_suggested()
        return (
            long
            and not self._state.steps
            and not self._state.closed
            and workflow.all_handlers_finished()
            and all(task.done() for task in self._tasks)
            and not self._review_lock.locked()
            and not self._meeting_lock.locked()
        )

    # The review meeting -----------------------------------------------------------------------

    @workflow.update
    async def reschedule(self, request: RescheduleRequest) -> Meeting:
        state = self._state
        async with self._meeting_lock:
            state.meeting = await meetings.revise(state, start=request.start)
            if self._v2():  # the new revision's invites go out from the run's loop
                state.steps += [
                    InviteStep(sequence=state.meeting.sequence, channel=c) for c in meetings.channels(state.team)
                ]
            else:
                await self._steps.deliver()
            return state.meeting

    @reschedule.validator
    def _check_reschedule(self, request: RescheduleRequest) -> None:
        meeting = self._state.meeting
        if meeting is None:
            raise ValueError("no review meeting has been scheduled for this post-mortem yet")
        if meeting.status == MeetingStatus.CANCELLED or self._state.closed:
            raise ValueError("the review meeting was cancelled")
        if request.start <= workflow.now():
            raise ValueError(f"the new time {request.start.isoformat()} is in the past")
        if request.start > workflow.now() + LATEST_RESCHEDULE:
            raise ValueError("the new time is more than 90 days away")
        team = self._state.team
        if team is not None and not request.force:  # a validator runs when an Update arrives, never on replay
            end = request.start + (meeting.end - meeting.start)
            if outside := outside_working_hours(request.start, end, team.meeting):
                raise ValueError(f'{outside}; send "force": true to move it there anyway')

    @workflow.update
    async def cancel(self, request: CancelRequest) -> Meeting | None:
        """The post-mortem is being deleted: cancel the meeting (METHOD:CANCEL), its follow-ups, and finish.

        The cancellation is sent before answering (the report's rows go right after), briefly tried."""
        state, v2 = self._state, self._v2()
        async with self._meeting_lock:
            if state.meeting is not None and state.meeting.status != MeetingStatus.CANCELLED:
                state.meeting = await meetings.revise(state, cancel=True)
                if v2:
                    sequence = state.meeting.sequence
                    await asyncio.gather(
                        *(
                            self._steps.invite(InviteStep(sequence=sequence, channel=c), CANCEL_DELIVERY_OPTIONS)
                            for c in meetings.channels(state.team)
                        )
                    )
                else:
                    await self._steps.deliver()
            state.closed = True
            if v2 and state.follow_up_started:
                await self._steps.cancel_follow_ups()
            return state.meeting

    @workflow.query
    def meeting(self) -> Meeting | None:
        return self._state.meeting

    # Linked incidents ------------------------------------------------------------------------

    @workflow.update
    async def link_incident(self, request: LinkRequest) -> LinkedIncident:
        """Another incident belongs to this report: link it, recompute the metrics, gather its evidence."""
        state = self._state
        assert state.team is not None
        state.link(request.source.value, request.incident_id)
        try:
            linked = await workflow.execute_activity_method(
                LinkActivities.link_incident,
                LinkIncidentInput(
                    postmortem_id=state.postmortem_id,
                    source=request.source,
                    incident_id=request.incident_id,
                    now=workflow.now(),
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=STEP_RETRY,
            )
        except ActivityError:
            state.unlink(request.source.value, request.incident_id)
            raise
        if self._v2():  # its evidence is gathered in the background: the caller does not wait for it
            self._tasks.append(asyncio.create_task(self._steps.gather_linked(linked.incident.summary())))
        else:
            _, late = await gathering.gather(state.postmortem_id, linked.incident, state.team)
            self._tasks.append(asyncio.create_task(self._steps.late_gathers(late, linked.incident, record=False)))
        return linked

    @link_incident.validator
    def _check_link(self, request: LinkRequest) -> None:
        state = self._state
        if state.review is None or state.closed:
            raise ValueError("incidents can be linked once the draft exists, until the report is deleted")
        if request.actor.role not in lifecycle.EDITORS:
            raise refused(TransitionRefused("linking incidents needs the editor role", 403))
        if state.is_linked(request.source.value, request.incident_id):
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
        if not self._started:
            return
        request = RefreshIncidentInput(
            postmortem_id=self._state.postmortem_id,
            incident=event.incident,
            now=workflow.now(),
            delivery_id=delivery_id,
        )
        step = RefreshIncidentStep(request=request)
        if self._v2():
            self._state.steps.append(step)
        else:
            await self._steps.refresh_incident(step)

    # Review lifecycle ------------------------------------------------------------------------

    @workflow.query
    def review(self) -> Review | None:
        return self._state.review

    @workflow.query
    def problems(self) -> list[ProblemEntry]:
        return list(self._state.problems.values())

    def _check(self, action: str, actor: Actor, **facts: object) -> None:
        """Validators of every transition: the lifecycle's rules on the state as it is now."""
        state = self._state
        try:
            if state.review is None or state.closed:
                raise TransitionRefused(
                    "the draft is not ready yet" if not state.closed else "this post-mortem is closed"
                )
            lifecycle.check(state.review, action, actor, current_version=state.document_version, **facts)  # type: ignore[arg-type]
        except TransitionRefused as error:
            raise refused(error) from error

    async def _decide(self, action: str, actor: Actor, **given: object) -> Review:
        """Apply the decision, record it, and leave what it implies to the run's loop.

        Validators of Updates accepted together all saw the same state; inside the lock the state may
        have moved on (two people clicked at once), so `apply` checks again before changing anything."""
        state = self._state
        async with self._review_lock:
            review = state.review
            try:
                if review is None or state.closed:
                    raise TransitionRefused("this post-mortem is closed")
                outcome = lifecycle.apply(
                    review,
                    action,
                    actor,
                    now=workflow.now(),
                    current_version=state.document_version,
                    slug=lambda: workflow.uuid4().hex,
                    **given,  # type: ignore[arg-type]
                )
            except TransitionRefused as error:
                raise refused(error) from error
            if action == "submit":
                state.submitted_at = workflow.now()
            await record_review(state)
            self._set_status(outcome.to)
            self._changed = True
            self._steps.tell(outcome.lapsed, "lapsed", Say(words="lapsed"))
            if action == "change_reviewers":
                self._steps.tell(outcome.added, "asked", Say(words="asked"))
            elif workflow.patched(NOTIFY_PATCH):
                self._told(action, actor, review, given.get("comment"))
            if outcome.publishes:
                await self._published(PublishStep(count=review.published_count, version=review.published_version))
                if workflow.patched(NOTIFY_PATCH):  # after the exports: the link shows what was published
                    people = [*state.owners, *(r.reviewer for r in review.reviewers)]
                    said = Say(words="published")
                    self._steps.tell_people(NoticeKind.PUBLISHED, people, said, key=str(review.published_count))
            return review

    def _told(self, action: str, actor: Actor, review: Review, comment: object) -> None:
        """Who hears of a decision (notify-v2): reviewers when asked, the owners and the author when
        changes are requested (owners and reviewers hear of a publication after its step)."""
        state, event = self._state, str(len(review.history))
        reviewers = [r.reviewer for r in review.reviewers]
        if action == "submit":
            said = Say(words="submitted", args={"by": actor.name})
            self._steps.tell_people(NoticeKind.REVIEW_REQUESTED, reviewers, said, key=event)
        elif action == "request_changes":
            author = next((t.by for t in reversed(review.history) if t.action == "submit"), None)
            people = [p for p in [*state.owners, author or ""] if p.casefold() != actor.name.casefold()]
            said = (
                Say(words="changes_requested_because", args={"by": actor.name, "comment": str(comment)})
                if comment
                else Say(words="changes_requested", args={"by": actor.name})
            )
            self._steps.tell_people(NoticeKind.CHANGES_REQUESTED, people, said, key=event)

    async def _published(self, step: PublishStep) -> None:
        """A publication: its exports and announcement, the tickets, and (the first time) the follow-ups."""
        then: list[Step] = [step, TicketsStep()]
        if step.count == 1:
            then.append(FollowUpStep())
        if self._v2():
            self._state.steps += then
            return
        for each in then:  # runs from before LIFECYCLE_V2 publish inside the Update, as they did
            await self._steps.run(each)

    @workflow.signal
    async def action_items_changed(self) -> None:
        """Items added after publishing get their tickets too."""
        review = self._state.review
        if review is not None and review.status in (Status.PUBLISHED, Status.ARCHIVED):
            if self._v2():
                self._state.steps.append(TicketsStep())
            else:
                await self._steps.tickets(TicketsStep())

    @workflow.signal
    async def action_item_edited(self, edit: ActionItemEdited) -> None:
        """A person changed an item's status, owner or due date here: its ticket is told from the run's
        loop. A push sends the item as it is when it runs, so one waiting push per item is enough (the
        first step may be running already, having read the item before this change: not counted)."""
        state = self._state
        if state.closed or state.team is None or not workflow.patched(TICKET_PUSH_PATCH):
            return
        step = PushTicketStep(item_id=edit.item_id)
        if step in state.steps[1:]:
            return
        if self._v2():
            state.steps.append(step)
        else:
            await self._steps.push_ticket(step)

    @workflow.signal
    async def document_edited(self, edit: DocumentEdited) -> None:
        """The document moved to `edit.version`: approvals of older versions go back to pending, and
        those reviewers are told."""
        state = self._state
        state.document_version = max(state.document_version or 0, edit.version)
        if state.review is None:
            return
        async with self._review_lock:
            lapsed = lifecycle.lapse(state.review, edit.version)
            if lapsed:
                await record_review(state)
                self._changed = True
                said = Say(words="edited_after_approval", args={"by": edit.by, "version": str(edit.version)})
                self._steps.tell(lapsed, "lapsed", said, event=f"v{edit.version}")

    @workflow.signal
    async def sections_redrafted(self, redrafted: SectionsRedrafted) -> None:
        """A change of language, zone or template gave sections the model wrote the deterministic text:
        in a DRAFT of a team with a model, the model writes them again from the run's loop (never one a
        person edited since; if the model is away, the deterministic text stays). One waiting step per
        set of sections is enough: it reads the report's language and zone when it runs."""
        state, team = self._state, self._state.team
        if state.closed or team is None or not team.narrative or state.status != Status.DRAFT:
            return
        if not redrafted.sections or not workflow.patched(drafting.LANGUAGE_PATCH):
            return
        step = NarrativeStep(redact=team.narrative_redact, sections=sorted(set(redrafted.sections)))
        if step in state.steps[1:]:
            return
        if self._v2():
            state.steps.append(step)
        else:
            await drafting.narrate(state.postmortem_id, step, self._effects)

    @workflow.signal
    async def comment_posted(self, comment: CommentPosted) -> None:
        """A stored comment @mentions people: each is told once (the comment's id is the key)."""
        state = self._state
        if state.review is None or state.closed or not workflow.patched(NOTIFY_PATCH):
            return
        people = [p for p in comment.mentions if p.casefold() != comment.by.casefold()]
        said = Say(
            words="mentioned_on" if comment.section else "mentioned",
            args={"by": comment.by, "excerpt": comment.excerpt},
            section=comment.section,
        )
        self._steps.tell_people(NoticeKind.MENTION, people, said, key=comment.comment_id)

    @workflow.update
    async def submit(self, request: SubmitRequest) -> Review:
        return await self._decide("submit", request.actor, reviewers=request.reviewers, facts=request.facts)

    @submit.validator
    def _check_submit(self, request: SubmitRequest) -> None:
        self._check("submit", request.actor, reviewers=request.reviewers, facts=request.facts)

    @workflow.update
    async def approve(self, request: DecisionRequest) -> Review:
        return await self._decide("approve", request.actor, facts=request.facts, comment=request.comment)

    @approve.validator
    def _check_approve(self, request: DecisionRequest) -> None:
        self._check("approve", request.actor, facts=request.facts, comment=request.comment)

    @workflow.update
    async def request_changes(self, request: DecisionRequest) -> Review:
        return await self._decide("request_changes", request.actor, facts=request.facts, comment=request.comment)

    @request_changes.validator
    def _check_request_changes(self, request: DecisionRequest) -> None:
        self._check("request_changes", request.actor, facts=request.facts, comment=request.comment)

    @workflow.update
    async def publish(self, request: TransitionRequest) -> Review:
        return await self._decide("publish", request.actor, facts=request.facts)

    @publish.validator
    def _check_publish(self, request: TransitionRequest) -> None:
        self._check("publish", request.actor, facts=request.facts)

    @workflow.update
    async def unpublish(self, request: TransitionRequest) -> Review:
        return await self._decide("unpublish", request.actor, facts=request.facts)

    @unpublish.validator
    def _check_unpublish(self, request: TransitionRequest) -> None:
        self._check("unpublish", request.actor, facts=request.facts)

    @workflow.update
    async def archive(self, request: TransitionRequest) -> Review:
        return await self._decide("archive", request.actor, facts=request.facts)

    @archive.validator
    def _check_archive(self, request: TransitionRequest) -> None:
        self._check("archive", request.actor, facts=request.facts)

    @workflow.update
    async def change_reviewers(self, request: ReviewersRequest) -> Review:
        """Who reviews a report IN_REVIEW: decisions of those who stay are kept, new ones are asked."""
        return await self._decide("change_reviewers", request.actor, reviewers=request.reviewers)

    @change_reviewers.validator
    def _check_change_reviewers(self, request: ReviewersRequest) -> None:
        self._check("change_reviewers", request.actor, reviewers=request.reviewers)

    # Problems ---------------------------------------------------------------------------------

    @workflow.update
    async def retry_problem(self, request: RetryProblemRequest) -> Problem:
        """Run a step that failed for good once more (from the run's loop): the problem is retrying now."""
        try:
            key, _ = self._effects.check_retry(request.problem_id, request.actor)
        except TransitionRefused as error:  # another retry of it won the race
            raise refused(error) from error
        problem, step = await self._effects.retrying(key)
        self._state.steps.append(step)
        return problem

    @retry_problem.validator
    def _check_retry(self, request: RetryProblemRequest) -> None:
        try:
            self._effects.check_retry(request.problem_id, request.actor)
        except TransitionRefused as error:
            raise refused(error) from error

    @workflow.query
    def status(self) -> Status | None:
        return self._state.status

    def _set_status(self, status: Status) -> None:
        self._state.status = status
        workflow.upsert_search_attributes([STATUS_ATTRIBUTE.value_set(status.value)])
