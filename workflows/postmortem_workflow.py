"""PostmortemWorkflow: the lifecycle of one report, from a resolved incident to its draft.

Deterministic orchestration only: every side effect is an activity, every decision is pure code.
Later steps (review, publishing, tickets, follow-ups) extend this workflow behind `workflow.patched`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.draft import DraftActivities, DraftPostmortemInput
    from postmortem.activities.team import ResolveTeamInput, TeamActivities
    from postmortem.models import Status
    from postmortem.policy import decide
    from postmortem.workflows.identity import STATUS_ATTRIBUTE
    from postmortem.workflows.inputs import PostmortemWorkflowInput, PostmortemWorkflowResult

STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name="PostmortemWorkflow")
class PostmortemWorkflow:
    def __init__(self) -> None:
        self._status: Status | None = None
        self._closed = False

    @workflow.run
    async def run(self, input: PostmortemWorkflowInput) -> PostmortemWorkflowResult:
        incident = input.event.incident
        team = await workflow.execute_activity_method(
            TeamActivities.resolve_team,
            ResolveTeamInput(incident=incident.summary()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STEP_RETRY,
        )
        decision = decide([incident], team.policy)
        drafted = await workflow.execute_activity_method(
            DraftActivities.draft_postmortem,
            DraftPostmortemInput(
                postmortem_id=input.postmortem_id,
                workflow_id=workflow.info().workflow_id,
                incident=incident,
                team=team,
                decision=decision,
                now=workflow.now(),
            ),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=STEP_RETRY,
        )
        self._set_status(drafted.status)
        if drafted.status == Status.SKIPPED:
            return PostmortemWorkflowResult(postmortem_id=drafted.postmortem_id, status=drafted.status)
        # The review steps (a later issue) take over from here; until then the report waits as a draft.
        await workflow.wait_condition(lambda: self._closed)
        return PostmortemWorkflowResult(postmortem_id=drafted.postmortem_id, status=self._status or drafted.status)

    @workflow.query
    def status(self) -> Status | None:
        return self._status

    def _set_status(self, status: Status) -> None:
        self._status = status
        workflow.upsert_search_attributes([STATUS_ATTRIBUTE.value_set(status.value)])
