"""REST: retry what a report's workflow could not do, once its cause is fixed.

A problem (`GET /api/postmortems/{id}` lists them) belongs to the workflow whose step failed: the
report's own or its follow-ups'. The retry is that workflow's `retry_problem` Update: it marks the
problem retrying and its run re-runs the step once (idempotency keys keep a delivered message from
going twice); the problem then ends resolved, or open again with one more attempt.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from postmortem.api.deps import EditableReport, Editor, GatewayDep, StoreDep
from postmortem.api.errors import TEMPORAL_UNAVAILABLE, error
from postmortem.review.lifecycle import Actor
from postmortem.review.problems import Problem, ProblemState
from postmortem.store.errors import NotFound
from postmortem.workflows.inputs import RetryProblemRequest

router = APIRouter(prefix="/api/postmortems/{postmortem_id}/problems", tags=["problems"])

# The Update exists on both workflow classes (PostmortemWorkflow and FollowUpWorkflow): named, not bound to one.
RETRY_PROBLEM = "retry_problem"


@router.post(
    "/{problem_id}/retry",
    response_model=Problem,
    status_code=202,
    responses={
        404: error("no such report (or one the caller may not see), or no such problem in it"),
        409: error("the problem is not open (being retried, or resolved), or its workflow refused or has finished"),
        503: TEMPORAL_UNAVAILABLE,
    },
)
async def retry_problem(
    pm: EditableReport,
    problem_id: Annotated[str, Path(max_length=200, description="a problem's id from the report's `problems`")],
    store: StoreDep,
    gateway: GatewayDep,
    token: Editor,
) -> Problem:
    """Accepted: the step runs again in the workflow's run; the answer is the problem as the Update stored it
    (retrying; GET the report to see it resolved, or open again with one more attempt)."""
    try:
        problem = await store.problems.get(pm.id, problem_id)
    except NotFound as exc:
        raise HTTPException(404, f"no problem {problem_id!r} in post-mortem {pm.id!r}") from exc
    if problem.state != ProblemState.OPEN:
        raise HTTPException(409, f"problem {problem_id!r} is {problem.state.value}: only an open problem is retried")
    retrying = await gateway.update(
        problem.workflow_id,
        RETRY_PROBLEM,
        RetryProblemRequest(actor=Actor(name=token.name, role=token.role.value), problem_id=problem_id),
        f"retry-{problem_id}-{problem.attempts}",  # a repeated click on the same failure retries it once
    )
    return Problem.model_validate(retrying)  # named, the Update's result arrives as plain JSON
