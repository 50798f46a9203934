"""FollowUpWorkflow: 30, 60 and 90 days after publishing, are the action items done, and did it work?

A child of PostmortemWorkflow with little code under its long timers. At each check it syncs every
item with its ticket, records the check on the report, reminds the owners of overdue or stalled
items, and at the last check judges whether the fix worked. A sync or reminder that fails for good
is a problem of the report (this workflow's: `retry_problem` runs it again); the workflow ends with
its report (the parent's `cancel` cancels it, and it then completes).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.review import NotifyInput, ReviewActivities
    from postmortem.activities.tickets import FollowUpCheck, FollowUpCheckInput, TicketActivities, TicketsInput
    from postmortem.review.lifecycle import TransitionRefused
    from postmortem.review.notices import Say
    from postmortem.review.problems import Problem, ProblemState
    from postmortem.workflows.inputs import RetryProblemRequest
    from postmortem.workflows.side_effects import SideEffects, refused
    from postmortem.workflows.state import FollowUpCheckStep, NotifyStep, ProblemEntry, Step, SyncTicketsStep

RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10))
OPTIONS = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=5), schedule_to_close_timeout=timedelta(days=1), retry_policy=RETRY
)
# Runs from before problems ended on a failed step and were not cancellable to completion.
PROBLEMS_PATCH = "follow-up-problems"
# Runs from before the check itself could fail for good without ending the follow-ups.
CHECK_PATCH = "follow-up-check-problem"
# After the last check, open problems can still be retried for this long.
RETRY_WINDOW = timedelta(days=30)


class FollowUpInput(BaseModel):
    postmortem_id: str
    published_at: AwareDatetime
    days: list[int] = Field(default_factory=lambda: [30, 60, 90])
    tracker: str | None = None
    accounts: dict[str, str] = Field(default_factory=dict)
    slack_channel: str | None = None
    owners: list[str] = Field(default_factory=list, description="told of a problem (the report's owners)")


class FollowUpResult(BaseModel):
    checks: list[FollowUpCheck]
    cancelled: bool = False  # ended because its report was deleted


@workflow.defn(name="FollowUpWorkflow")
class FollowUpWorkflow:
    @workflow.init
    def __init__(self, input: FollowUpInput) -> None:
        self._input = input
        self._problems: dict[str, ProblemEntry] = {}
        self._retries: list[Step] = []
        self._checks: list[FollowUpCheck] = []
        self._effects = SideEffects(
            self._problems,
            postmortem_id=input.postmortem_id,
            owners=lambda: input.owners,
            slack_channel=lambda: input.slack_channel,
            survive=lambda: workflow.patched(PROBLEMS_PATCH),
        )

    @workflow.run
    async def run(self, input: FollowUpInput) -> FollowUpResult:
        if not workflow.patched(PROBLEMS_PATCH):
            return await self._checks_until_done(input)
        try:
            await self._checks_until_done(input)
            await self._retry_until(workflow.now() + RETRY_WINDOW, while_open=True)
        except BaseException as error:
            if not is_cancelled_exception(error):
                raise
            workflow.logger.info("follow-ups of %s cancelled: the report is gone", input.postmortem_id)
            return FollowUpResult(checks=self._checks, cancelled=True)
        return FollowUpResult(checks=self._checks)

    async def _checks_until_done(self, input: FollowUpInput) -> FollowUpResult:
        days = sorted(set(input.days))
        for day in days:
            due = input.published_at + timedelta(days=day)
            if due > workflow.now():
                await self._retry_until(due)
            await self._sync(SyncTicketsStep(day=day))
            await self._check(FollowUpCheckStep(day=day, final=day == days[-1]))
        return FollowUpResult(checks=self._checks)

    async def _retry_until(self, until: datetime, *, while_open: bool = False) -> None:
        """Sleep until `until`, running the retries people ask for meanwhile; `while_open`: only while
        some problem is not resolved. (Runs from before problems just sleep.)"""
        if not workflow.patched(PROBLEMS_PATCH):
            await workflow.sleep(until - workflow.now())
            return
        while until > workflow.now() and (not while_open or self._open_problems):
            try:
                await workflow.wait_condition(lambda: bool(self._retries), timeout=until - workflow.now())
            except TimeoutError:
                return
            while self._retries:
                step = self._retries.pop(0)
                if isinstance(step, SyncTicketsStep):
                    await self._sync(step)
                elif isinstance(step, NotifyStep):
                    await self._notify(step)
                elif isinstance(step, FollowUpCheckStep):
                    await self._check(step)

    @property
    def _open_problems(self) -> bool:
        return any(entry.state != ProblemState.RESOLVED for entry in self._problems.values())

    async def _check(self, step: FollowUpCheckStep) -> None:
        """Record the check of `step.day` and remind the owners of what is late; a check that fails for
        good (the store unreadable for a day) is a problem, retried when someone asks."""
        input = self._input
        check_input = FollowUpCheckInput(
            postmortem_id=input.postmortem_id,
            day=step.day,
            published_at=input.published_at,
            final=step.final,
            now=workflow.now(),
        )

        async def call() -> FollowUpCheck:
            return await workflow.execute_activity_method(TicketActivities.follow_up_check, check_input, **OPTIONS)

        if workflow.patched(CHECK_PATCH):
            check = await self._effects.attempt("follow_up", f"check, day {step.day}", call, retry=step)
            if check is None:
                return
        else:
            check = await call()
        self._checks.append(check)
        if check.owners_to_remind:
            late = check.overdue + check.stalled
            notice = NotifyInput(
                postmortem_id=input.postmortem_id,
                key=f"{input.postmortem_id}:followup:{step.day}",
                recipients=check.owners_to_remind,
                subject=f"Day {step.day} follow-up of post-mortem {input.postmortem_id}",
                text=f"Action items overdue or stalled: {'; '.join(late)}",
                slack_channel=input.slack_channel,
                now=workflow.now(),
                # what is sent: in the report's language, with its title (the words above are the fallback)
                subject_says=Say(words="follow_up_subject", args={"day": str(step.day)}),
                says=[Say(words="follow_up_late", args={"items": late})],
            )
            await self._notify(NotifyStep(target=f"follow-up day {step.day}", notice=notice))

    async def _sync(self, step: SyncTicketsStep) -> None:
        tickets = TicketsInput(
            postmortem_id=self._input.postmortem_id,
            tracker=self._input.tracker,
            accounts=self._input.accounts,
            now=workflow.now(),
        )
        await self._effects.attempt(
            "follow_up",
            f"{self._input.tracker or 'tracker'} sync, day {step.day}",
            lambda: workflow.execute_activity_method(TicketActivities.sync_tickets, tickets, **OPTIONS),
            retry=step,
        )

    async def _notify(self, step: NotifyStep) -> None:
        await self._effects.attempt(
            "notify",
            step.target,
            lambda: workflow.execute_activity_method(ReviewActivities.notify, step.notice, **OPTIONS),
            retry=step,
        )

    @workflow.update
    async def retry_problem(self, request: RetryProblemRequest) -> Problem:
        """Run a step that failed for good once more (a sync, or a reminder to the owners)."""
        try:
            key, _ = self._effects.check_retry(request.problem_id, request.actor)
        except TransitionRefused as error:  # another retry of it won the race
            raise refused(error) from error
        problem, step = await self._effects.retrying(key)
        self._retries.append(step)
        return problem

    @retry_problem.validator
    def _check_retry(self, request: RetryProblemRequest) -> None:
        try:
            self._effects.check_retry(request.problem_id, request.actor)
        except TransitionRefused as error:
            raise refused(error) from error

    @workflow.query
    def problems(self) -> list[ProblemEntry]:
        return list(self._problems.values())
