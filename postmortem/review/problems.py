"""A side effect that failed for good, as the report shows it: the lifecycle goes on without it.

A problem is keyed by its step and target (one per "the email invite of revision 2", not one per
attempt), so a step that fails again counts another attempt on the same problem.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field


class ProblemState(StrEnum):
    OPEN = "open"  # failed for good; waiting for someone to fix the cause and retry
    RETRYING = "retrying"  # a retry was asked for and is running
    RESOLVED = "resolved"  # a retry succeeded


class Problem(BaseModel):
    id: str
    step: str = Field(description="what failed: invite, notify, publish, tickets, gather, follow_up")
    target: str = Field(description="where: a channel, a source, a tracker, a recipient")
    message: str = Field(description="the upstream's own words")
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    attempts: int = 1
    state: ProblemState = ProblemState.OPEN
    workflow_id: str = Field(description="the workflow whose step it is (the report's or its follow-ups')")


def problem_key(step: str, target: str) -> str:
    """The identity of a failing step within its report: the same step failing again is the same problem."""
    return f"{step}:{target}"
