"""The one way both workflows touch the outside world: a failure for good becomes a problem, not an end.

An activity that fails for good (non-retryable, or out of retries or time) raises `ActivityError` in
the workflow. `SideEffects.attempt` catches it, records a problem on the report in the upstream's own
words (`record_problem`, which also tells the owners once), keeps the step so a retry can run it
again, and lets the lifecycle go on. Problem ids are drawn once per (step, target) and kept in the
workflow's state, so a step failing again is the same problem with one more attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Literal, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.problems import ProblemActivities, ProblemStateInput, RecordProblemInput
    from postmortem.review.lifecycle import EDITORS, Actor, TransitionRefused
    from postmortem.review.problems import Problem, ProblemState, problem_key
    from postmortem.workflows.options import STEP_RETRY
    from postmortem.workflows.state import ProblemEntry, Step

T = TypeVar("T")
Channel = Literal["email", "slack"]


def upstream_words(error: BaseException) -> str:
    """What the upstream said, as our activity put it: the first ApplicationError under the wrappers
    (ActivityError; a timeout leads to its last failure), not "Activity task failed", and not the
    library exception our integration wrapped (aiosmtplib's repr under "SMTP host:port refused …")."""
    words = str(error)
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ApplicationError):
            return cause.message or words
        if not isinstance(cause, FailureError):
            return str(cause) or words
        words = cause.message or words
        cause = cause.cause
    return words


def broken_channel(message: str) -> Channel | None:
    """Which way of telling people is the broken one, from the upstream's words (integrations name
    themselves first: "Slack answered ok=false …", "SMTP host:25 refused …")."""
    if message.startswith("Slack"):
        return "slack"
    if message.startswith("SMTP"):
        return "email"
    return None


def refused(error: TransitionRefused) -> ApplicationError:
    """A validator's refusal as Temporal carries it to the caller: the type names it, the details hold its
    HTTP status (read back by postmortem.app.gateway)."""
    return ApplicationError(str(error), error.status, type="TransitionRefused", non_retryable=True)


class SideEffects:
    """Problems of one workflow (`problems` is the workflow's state, changed in place)."""

    def __init__(
        self,
        problems: dict[str, ProblemEntry],
        *,
        postmortem_id: str,
        owners: Callable[[], list[str]],
        slack_channel: Callable[[], str | None],
        survive: Callable[[], bool] = lambda: True,
    ) -> None:
        self._problems = problems
        self._postmortem_id = postmortem_id
        self._owners = owners
        self._slack_channel = slack_channel
        # False only in runs recorded before problems existed, replaying a failure that ended them.
        self._survive = survive

    async def attempt(
        self,
        step: str,
        target: str,
        call: Callable[[], Awaitable[T]],
        *,
        retry: Step,
        legacy: Literal["raise", "log"] = "raise",
    ) -> T | None:
        """`call()`'s result, or None when it failed for good (then the problem is recorded).

        `legacy` is what runs from before problems did with the failure: end the run, or log it."""
        try:
            result = await call()
        except ActivityError as error:
            if not self._survive():
                if legacy == "raise":
                    raise
                workflow.logger.warning("%s %s failed for %s: %s", step, target, self._postmortem_id, error.cause)
                return None
            if is_cancelled_exception(error):  # the workflow is being cancelled: that is no problem
                raise
            await self.failed(step, target, upstream_words(error), retry=retry)
            return None
        if retry.retry_of is not None:
            await self.resolved(retry.retry_of)
        return result

    async def failed(self, step: str, target: str, message: str, *, retry: Step) -> ProblemEntry:
        """Record that `step` on `target` failed for good, saying `message`; `retry` runs it again."""
        key = problem_key(step, target)
        entry = self._problems.get(key)
        retry = retry.model_copy(update={"retry_of": None})
        if entry is None:
            entry = ProblemEntry(id=workflow.uuid4().hex[:16], step=step, target=target, retry=retry)
            self._problems[key] = entry
        else:
            entry.attempts, entry.state, entry.retry = entry.attempts + 1, ProblemState.OPEN, retry
        workflow.logger.warning("problem %s (%s %s) on %s: %s", entry.id, step, target, self._postmortem_id, message)
        await workflow.execute_activity_method(
            ProblemActivities.record_problem,
            RecordProblemInput(
                postmortem_id=self._postmortem_id,
                workflow_id=workflow.info().workflow_id,
                problem_id=entry.id,
                attempt=entry.attempts,
                step=step,
                target=target,
                message=message,
                now=workflow.now(),
                owners=self._owners(),
                broken_channel=broken_channel(message),
                slack_channel=self._slack_channel(),
            ),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=STEP_RETRY,
        )
        return entry

    def check_retry(self, problem_id: str, actor: Actor) -> tuple[str, ProblemEntry]:
        """The problem a `retry_problem` names, if `actor` may retry it now (TransitionRefused otherwise)."""
        if actor.role not in EDITORS:
            raise TransitionRefused("retrying a problem needs the editor role", 403)
        found = next(((key, entry) for key, entry in self._problems.items() if entry.id == problem_id), None)
        if found is None:
            raise TransitionRefused(f"no problem {problem_id!r} in this workflow", 404)
        if found[1].state != ProblemState.OPEN:
            raise TransitionRefused(
                f"problem {problem_id!r} is {found[1].state.value}: only an open problem is retried"
            )
        return found

    async def retrying(self, key: str) -> tuple[Problem, Step]:
        """Mark the problem retrying (on the report too); the step to run once more."""
        entry = self._problems[key]
        entry.state = ProblemState.RETRYING
        problem = await self._set_state(entry, ProblemState.RETRYING)
        return problem, entry.retry.model_copy(update={"retry_of": key})

    async def resolved(self, key: str) -> None:
        entry = self._problems.get(key)
        if entry is not None and entry.state != ProblemState.RESOLVED:
            entry.state = ProblemState.RESOLVED
            try:
                await self._set_state(entry, ProblemState.RESOLVED)
            except ActivityError as error:  # the report was deleted meanwhile: nothing left to show it on
                workflow.logger.info("problem %s not marked resolved: %s", entry.id, upstream_words(error))

    async def _set_state(self, entry: ProblemEntry, state: ProblemState) -> Problem:
        return await workflow.execute_activity_method(
            ProblemActivities.set_problem_state,
            ProblemStateInput(postmortem_id=self._postmortem_id, problem_id=entry.id, state=state, now=workflow.now()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STEP_RETRY,
        )
