"""The workflow's own input and result models (one per workflow, so fields can be added safely)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field

from postmortem.models import IncidentEvent, Source, Status
from postmortem.review.lifecycle import Actor, ReportFacts
from postmortem.workflows.state import PostmortemState

# Events in one run's history before it continues as new with its state (Temporal's own limit is 51,200).
HISTORY_THRESHOLD = 10_000


class PostmortemWorkflowInput(BaseModel):
    postmortem_id: str
    event: IncidentEvent
    # The inbox entry the event was relayed from: the incident's raw payload stays there (the event's
    # `incident.raw` is then empty), so no delivery can exceed Temporal's blob or decoding limits.
    # None in histories from before the inbox, whose events still carry their raw payload.
    delivery_id: str | None = None
    history_threshold: int = Field(default=HISTORY_THRESHOLD, ge=1, description="continue as new past this length")
    state: PostmortemState | None = Field(default=None, description="set when a run continues as new: go on from it")


class IncidentDelivery(BaseModel):
    """The `incident_delivered` signal: a later webhook for an incident linked to this report."""

    event: IncidentEvent
    delivery_id: str | None = None  # as in PostmortemWorkflowInput


class PostmortemWorkflowResult(BaseModel):
    postmortem_id: str
    status: Status


class RescheduleRequest(BaseModel):
    start: AwareDatetime
    requested_by: str | None = None
    force: bool = Field(default=False, description="move it even outside the team's working hours")


class CancelRequest(BaseModel):
    reason: str
    requested_by: str | None = None


class SubmitRequest(BaseModel):
    actor: Actor
    reviewers: list[str]
    # What the API read from the store when the person asked (None in histories from before it).
    facts: ReportFacts | None = None


class DecisionRequest(BaseModel):
    actor: Actor
    comment: str | None = None
    facts: ReportFacts | None = None  # `facts.version` is the version the reviewer approves


class TransitionRequest(BaseModel):
    actor: Actor
    facts: ReportFacts | None = None


class ReviewersRequest(BaseModel):
    """`change_reviewers`: who reviews a report IN_REVIEW (decisions of those who stay are kept)."""

    actor: Actor
    reviewers: list[str]


class RetryProblemRequest(BaseModel):
    """`retry_problem`: run a step that failed for good once more, now that its cause is fixed."""

    actor: Actor
    problem_id: str


class DocumentEdited(BaseModel):
    """`document_edited` signal: the store's document moved to `version` (approvals of older ones lapse)."""

    version: int
    by: str


class ActionItemEdited(BaseModel):
    """`action_item_edited` signal: a person changed the status, owner or due date of item `item_id`
    here (never sent for a change that came from its ticket)."""

    item_id: str
    by: str


class SectionsRedrafted(BaseModel):
    """`sections_redrafted` signal: a person's change of language, time zone or template at document
    `version` gave `sections`, which the model had written, the deterministic text: the model writes
    them again (in the report's language and zone as they are when it runs)."""

    version: int
    sections: list[str]
    by: str


class CommentPosted(BaseModel):
    """`comment_posted` signal: a stored comment @mentions `mentions` (people the service knows)."""

    comment_id: str
    by: str
    section: str | None = None
    mentions: list[str]
    excerpt: str = Field(default="", max_length=300)


class LinkRequest(BaseModel):
    actor: Actor
    source: Source
    incident_id: str
