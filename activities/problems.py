"""Steps that keep the report's list of problems: a side effect that failed for good, and its retry.

Recording is idempotent per problem (its id): a retried recording counts no extra attempt, and the
report's owner is told once per problem, on a channel other than the broken one. Telling them is
a courtesy: when that fails too it is logged, and the problem is recorded all the same.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from postmortem.activities.clients import OutsideClients
from postmortem.activities.page_links import PageLinks
from postmortem.activities.review import Messenger
from postmortem.config import HttpSettings, ServerSettings, SlackSettings, SmtpSettings, WebSettings
from postmortem.review.notices import Voice
from postmortem.review.problems import Problem, ProblemState
from postmortem.store.errors import NotFound
from postmortem.store.store import Store

Channel = Literal["email", "slack"]


class RecordProblemInput(BaseModel):
    postmortem_id: str
    workflow_id: str
    problem_id: str = Field(description="chosen by the workflow, stable for the step and target")
    attempt: int = Field(description="which failure of this problem this is (1, 2, …): recording it twice counts once")
    step: str
    target: str
    message: str
    now: AwareDatetime
    owners: list[str] = Field(default_factory=list, description="who is told, once per problem")
    broken_channel: Channel | None = Field(default=None, description="not used to tell them")
    slack_channel: str | None = None


class ProblemStateInput(BaseModel):
    postmortem_id: str
    problem_id: str
    state: ProblemState
    now: AwareDatetime


def delivery_key(postmortem_id: str, problem_id: str) -> str:
    """The delivery log's key of telling the owners of this problem (`:slack`, `:email:<owner>` each)."""
    return f"{postmortem_id}:problem:{problem_id}"


class ProblemActivities:
    """Implemented over `store.problems` (see postmortem/store/problems.py)."""

    def __init__(
        self,
        store: Store,
        *,
        smtp: SmtpSettings | None = None,
        slack: SlackSettings | None = None,
        server: ServerSettings | None = None,
        http: HttpSettings | None = None,
        web: WebSettings | None = None,
        clients: OutsideClients | None = None,
    ) -> None:
        self._store = store
        self._public_url = (server or ServerSettings()).resolved_public_url
        self._links = PageLinks(store, server, web)
        self._messenger = Messenger.from_settings(store, smtp, slack, http, clients)

    @activity.defn(name="record_problem")
    async def record_problem(self, input: RecordProblemInput) -> Problem:
        try:
            problem, first = await self._store.problems.record(
                input.postmortem_id,
                problem_id=input.problem_id,
                workflow_id=input.workflow_id,
                step=input.step,
                target=input.target,
                message=input.message,
                attempt=input.attempt,
                now=input.now,
            )
        except NotFound:
            # The report was deleted: there is nowhere to show the problem and nobody to tell.
            activity.logger.info("post-mortem %s is gone; problem %s not kept", input.postmortem_id, input.problem_id)
            return Problem(
                id=input.problem_id,
                step=input.step,
                target=input.target,
                message=input.message,
                first_seen=input.now,
                last_seen=input.now,
                attempts=input.attempt,
                workflow_id=input.workflow_id,
            )
        # The first recording tells the owners; so does a re-run of it (this activity retried after
        # the row was written but before they were told): the delivery keys keep it to once.
        if first or input.attempt <= 1:
            await self._tell(input, problem)
        return problem

    @activity.defn(name="set_problem_state")
    async def set_problem_state(self, input: ProblemStateInput) -> Problem:
        try:
            return await self._store.problems.set_state(input.postmortem_id, input.problem_id, input.state, input.now)
        except NotFound as exc:
            raise ApplicationError(str(exc), type="NotFound", non_retryable=True) from exc

    async def _tell(self, input: RecordProblemInput, problem: Problem) -> None:
        try:
            pm = await self._store.postmortems.get(input.postmortem_id)
        except NotFound:
            return
        key = delivery_key(input.postmortem_id, problem.id)
        retry = f"{self._public_url}/api/postmortems/{input.postmortem_id}/problems/{problem.id}/retry"
        voice = Voice.of(pm)  # the report's language; the upstream's message keeps its own words
        subject = voice.words("problem_subject", title=pm.title, step=voice.step(problem.step), target=problem.target)
        text = voice.words("problem_text", message=problem.message, retry=retry)
        page = self._links.page(input.postmortem_id)
        if input.slack_channel and input.broken_channel != "slack":
            try:
                await self._messenger.slack(
                    input.postmortem_id, f"{key}:slack", input.slack_channel, f"{subject}\n{text}{page}", input.now
                )
            except Exception as exc:  # never raised: the problem is on the report whether or not they hear of it
                activity.logger.warning("could not tell %s of problem %s on Slack: %s", input.slack_channel, key, exc)
        if input.broken_channel == "email":
            return
        for owner in dict.fromkeys(input.owners):  # one message each: their own signed link, their own key
            try:
                link = await self._links.for_people(input.postmortem_id, [owner], input.now)
                await self._messenger.email(
                    input.postmortem_id, f"{key}:email:{owner}", [owner], subject, f"{text}{link}", input.now
                )
            except Exception as exc:
                activity.logger.warning("could not email %s of problem %s: %s", owner, key, exc)
