"""The steps of the run's own loop: what a decision implies (publish, tickets, follow-ups), deliveries,
and the retry of a step that failed. Each goes through `SideEffects`, so none can end the report.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import postmortem.workflows.drafting as drafting
    import postmortem.workflows.gathering as gathering
    import postmortem.workflows.meetings as meetings
    import postmortem.workflows.reminders as reminders
    from postmortem.activities.link import LinkActivities
    from postmortem.activities.refresh import RefreshActivities, RefreshReportInput
    from postmortem.activities.review import (
        NotifyInput,
        PeopleNoticeInput,
        PublishInput,
        RecordReviewInput,
        ReviewActivities,
    )
    from postmortem.activities.tickets import PushTicketInput, TicketActivities, TicketsInput
    from postmortem.models import Incident, Status
    from postmortem.review.notices import NoticeKind, Say
    from postmortem.workflows.follow_up_workflow import FollowUpInput, FollowUpWorkflow
    from postmortem.workflows.identity import follow_up_id_for
    from postmortem.workflows.options import DELIVERY_OPTIONS, QUICK, STEP_RETRY, TICKETS_RETRY
    from postmortem.workflows.side_effects import SideEffects
    from postmortem.workflows.state import (
        FollowUpStep,
        GatherStep,
        InviteStep,
        NarrativeStep,
        NotifyStep,
        PeopleNoticeStep,
        PlanMeetingStep,
        PostmortemState,
        PublishStep,
        PushTicketStep,
        RefreshIncidentStep,
        Step,
        SyncTicketsStep,
        TicketsStep,
    )

PUBLISHED = (Status.PUBLISHED, Status.ARCHIVED)
# Messages to people (review requested, changes requested, @mentions, published, reminders): the title
# in the subject, one email per person with their signed link, reminders due at once folded into one.
NOTIFY_PATCH = "notify-v2"
TELLS = {"lapsed": NoticeKind.LAPSED, "asked": NoticeKind.REVIEW_REQUESTED}


async def record_review(state: PostmortemState) -> None:
    """Persist the review as the workflow holds it (the API reads it from the store)."""
    assert state.review is not None
    await workflow.execute_activity_method(
        ReviewActivities.record_review,
        RecordReviewInput(postmortem_id=state.postmortem_id, review=state.review, now=workflow.now()),
        start_to_close_timeout=QUICK,
        retry_policy=STEP_RETRY,
    )


async def refresh_report(postmortem_id: str, *, keep_drafted: bool = False) -> None:
    await workflow.execute_activity_method(
        RefreshActivities.refresh_report,
        RefreshReportInput(postmortem_id=postmortem_id, keep_drafted=keep_drafted),
        start_to_close_timeout=timedelta(minutes=2),
        retry_policy=STEP_RETRY,
    )


class Steps:
    """Carries out one `Step` on the workflow's state."""

    def __init__(self, state: PostmortemState, effects: SideEffects) -> None:
        self._state = state
        self._effects = effects

    async def run(self, step: Step) -> None:
        if isinstance(step, PublishStep):
            await self.publish(step)
        elif isinstance(step, TicketsStep):
            await self.tickets(step)
        elif isinstance(step, PushTicketStep):
            await self.push_ticket(step)
        elif isinstance(step, FollowUpStep):
            await self.follow_up(step)
        elif isinstance(step, InviteStep):
            await self.invite(step)
        elif isinstance(step, PlanMeetingStep):
            await self.plan_meeting(step)
        elif isinstance(step, NotifyStep):
            await self.notify(step)
        elif isinstance(step, PeopleNoticeStep):
            await self.notify_people(step)
        elif isinstance(step, GatherStep):
            await self.gather(step)
        elif isinstance(step, RefreshIncidentStep):
            await self.refresh_incident(step)
        elif isinstance(step, NarrativeStep):
            await drafting.narrate(self._state.postmortem_id, step, self._effects)
        elif isinstance(step, SyncTicketsStep):  # a follow-up's step: not run here
            raise AssertionError(f"{step.kind} is a step of the follow-up workflow")

    async def _superseded(self, step: Step) -> None:
        """The step no longer applies (e.g. unpublished since): a retry of it is done."""
        if step.retry_of is not None:
            await self._effects.resolved(step.retry_of)

    async def publish(self, step: PublishStep) -> None:
        """Exports of the approved version, the public page and the announcement of publication `count`."""
        state, review = self._state, self._state.review
        if review is None or review.status not in PUBLISHED or review.published_count != step.count:
            await self._superseded(step)
            return
        channel = state.team.slack_channel if state.team else None
        publication = PublishInput(
            postmortem_id=state.postmortem_id,
            published_count=step.count,
            public_slug=review.public_slug,
            slack_channel=channel,
            version=step.version,
            now=workflow.now(),
        )
        await self._effects.attempt(
            "publish",
            channel or "exports",
            lambda: workflow.execute_activity_method(ReviewActivities.publish_report, publication, **DELIVERY_OPTIONS),
            retry=step,
            legacy="log",
        )
        if review.status not in PUBLISHED or review.published_count != step.count:
            await record_review(state)  # unpublished while it ran: withdraw what it may have written

    async def tickets(self, step: TicketsStep) -> None:
        """One ticket per action item, exactly once (the activity searches before it creates)."""
        team = self._state.team
        if team is None:
            return
        tickets = TicketsInput(
            postmortem_id=self._state.postmortem_id,
            tracker=team.tracker,
            accounts={k.casefold(): v for k, v in team.tracker_users.items()},
            now=workflow.now(),
        )
        await self._effects.attempt(
            "tickets",
            team.tracker or "tracker",
            lambda: workflow.execute_activity_method(
                TicketActivities.open_tickets,
                tickets,
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=team.gather_heartbeat_seconds),
                schedule_to_close_timeout=timedelta(days=1),
                retry_policy=TICKETS_RETRY,
            ),
            retry=step,
            legacy="log",
        )

    async def push_ticket(self, step: PushTicketStep) -> None:
        """An item changed here reaches its ticket (the activity writes only what differs); a tracker
        refusing for good is a problem on the report that a person can retry."""
        team = self._state.team
        if team is None:
            await self._superseded(step)
            return
        push = PushTicketInput(
            postmortem_id=self._state.postmortem_id,
            item_id=step.item_id,
            accounts={k.casefold(): v for k, v in team.tracker_users.items()},
        )
        await self._effects.attempt(
            "ticket",
            f"{team.tracker or 'tracker'} item {step.item_id}",
            lambda: workflow.execute_activity_method(TicketActivities.push_ticket, push, **DELIVERY_OPTIONS),
            retry=step,
        )

    async def follow_up(self, step: FollowUpStep) -> None:
        """The 30/60/90-day checks, a child that outlives this run (and ends with the report)."""
        state, team = self._state, self._state.team
        if state.follow_up_started or team is None:
            await self._superseded(step)
            return
        try:
            await workflow.start_child_workflow(
                FollowUpWorkflow.run,
                FollowUpInput(
                    postmortem_id=state.postmortem_id,
                    published_at=workflow.now(),
                    days=team.follow_up_days,
                    tracker=team.tracker,
                    accounts={k.casefold(): v for k, v in team.tracker_users.items()},
                    slack_channel=team.slack_channel,
                    owners=state.owners,
                ),
                id=follow_up_id_for(state.postmortem_id),
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("the follow-ups of %s are already running", state.postmortem_id)
        state.follow_up_started = True

    async def invite(self, step: InviteStep, options: workflow.ActivityConfig = DELIVERY_OPTIONS) -> None:
        await self._effects.attempt(
            "invite",
            f"{step.channel} revision {step.sequence}",
            lambda: meetings.send(self._state.postmortem_id, step.sequence, step.channel, options),
            retry=step,
        )

    async def deliver(self) -> None:
        """The current revision of the invite on every channel at once (each a no-op if unconfigured)."""
        assert self._state.meeting is not None
        sequence = self._state.meeting.sequence
        await asyncio.gather(
            *(self.invite(InviteStep(sequence=sequence, channel=c)) for c in meetings.channels(self._state.team))
        )

    async def plan_meeting(self, step: PlanMeetingStep) -> None:
        state = self._state
        if state.closed or state.meeting is not None:
            await self._superseded(step)
            return
        planned = await self._effects.attempt(
            "meeting", "plan", lambda: meetings.plan(state, step.incident), retry=step
        )
        if planned is not None:
            state.meeting = planned
            await self.deliver()

    async def notify(self, step: NotifyStep) -> None:
        await self._effects.attempt("notify", step.target, lambda: notify(step.notice), retry=step)

    async def notify_people(self, step: PeopleNoticeStep) -> None:
        await self._effects.attempt("notify", step.target, lambda: notify_people(step.notice), retry=step)

    async def gather(self, step: GatherStep) -> None:
        """A source read again: its evidence joins the report (refreshed) once it could be read."""
        state = self._state
        assert state.team is not None
        handle = gathering.start_source(step.source, state.postmortem_id, step.incident, state.team)
        await workflow.wait([handle])
        if (reason := gathering.failure(handle)) is not None:
            await self._effects.failed("gather", step.source.value, reason, retry=step)
            return
        if step.retry_of is not None:
            await self._effects.resolved(step.retry_of)
        await self.refreshed()

    async def gathered(self, done: gathering.Handles, incident: Incident) -> None:
        """Record the sources that could not be read for good among finished gathers of `incident`."""
        for source, handle in done.items():
            if (reason := gathering.failure(handle)) is not None:
                retry = GatherStep(source=source, incident=incident)
                await self._effects.failed("gather", source.value, reason, retry=retry)

    async def late_gathers(self, late: gathering.Handles, incident: Incident, *, record: bool) -> None:
        """Once the sources still running at the draft's deadline are done, the report is refreshed with
        their evidence (`record`: and those that failed for good are problems)."""
        if not late:
            return
        await workflow.wait(list(late.values()))
        if record:
            await self.gathered(late, incident)
        await self.refreshed()

    async def refreshed(self) -> None:
        """The report completed with new evidence; a DRAFT whose team has a model gets the model's
        sections written again from it (narrative-redraft: the refresh leaves them to that step)."""
        state = self._state
        team = state.team
        redraft = (
            team is not None
            and team.narrative
            and state.status == Status.DRAFT
            and workflow.patched(drafting.REDRAFT_PATCH)
        )
        await refresh_report(state.postmortem_id, keep_drafted=redraft)
        if redraft and team is not None:
            await drafting.narrate(
                state.postmortem_id, NarrativeStep(redact=team.narrative_redact, redraft=True), self._effects
            )

    async def gather_linked(self, incident: Incident) -> None:
        """The evidence of an incident linked to the report, gathered like the report's own."""
        assert self._state.team is not None
        done, late = await gathering.gather(self._state.postmortem_id, incident, self._state.team)
        await self.gathered(done, incident)
        await self.late_gathers(late, incident, record=True)

    async def cancel_follow_ups(self) -> None:
        """The report is deleted: its follow-up workflow ends (it completes when cancelled)."""
        try:
            await workflow.get_external_workflow_handle(follow_up_id_for(self._state.postmortem_id)).cancel()
        except FailureError as error:  # finished already: nothing to end
            workflow.logger.info("follow-ups of %s not cancelled: %s", self._state.postmortem_id, error)

    def tell(self, people: list[str], why: str, say: Say, *, event: str | None = None) -> None:
        """Queue a message to each of `people`; its key is stable per review event (sent once).
        `event` (notify-v2) names it when the review's history did not move (an edit)."""
        state = self._state
        if not people or state.team is None or state.review is None:
            return
        if workflow.patched(NOTIFY_PATCH):
            self.tell_people(TELLS[why], people, say, key=event or str(len(state.review.history)))
            return
        number = len(state.review.history)
        for person in people:  # runs from before notify-v2: in English, as they were
            notice = reminders.notice(
                state,
                key=f"{state.postmortem_id}:{why}:{person}:{number}",
                recipients=[person],
                subject=f"Post-mortem {state.postmortem_id}",
                text=reminders.english(state).say(say),
                now=workflow.now(),
            )
            state.steps.append(NotifyStep(target=f"{why} {person}", notice=notice))

    def tell_people(self, kind: NoticeKind, people: list[str], say: Say, *, key: str) -> None:
        """Queue one message of `kind` to `people` (notify-v2: each gets their own email and signed
        link), said in the report's language when it is sent; `key` names the event, so it is sent once."""
        state = self._state
        people = list(dict.fromkeys(p for p in people if p))
        if not people or state.team is None:
            return
        notice = reminders.people_notice(
            state,
            kind,
            key=f"{state.postmortem_id}:{kind.value}:{key}",
            recipients=people,
            says=[say],
            now=workflow.now(),
        )
        if kind == NoticeKind.PUBLISHED:  # the channel has the announcement of the publication already
            notice.slack_channel = None
        state.steps.append(PeopleNoticeStep(target=f"{kind.value} {', '.join(people)}", notice=notice))

    async def refresh_incident(self, step: RefreshIncidentStep) -> None:
        request = step.request
        await self._effects.attempt(
            "refresh",
            f"{request.incident.source.value} {request.incident.id}",
            lambda: workflow.execute_activity_method(
                LinkActivities.refresh_incident,
                request,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=STEP_RETRY,
            ),
            retry=step,
        )


async def notify(notice: NotifyInput) -> object:
    return await workflow.execute_activity_method(ReviewActivities.notify, notice, **DELIVERY_OPTIONS)


async def notify_people(notice: PeopleNoticeInput) -> object:
    return await workflow.execute_activity_method(ReviewActivities.notify_people, notice, **DELIVERY_OPTIONS)
