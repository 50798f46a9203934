"""The workflow's own input and result models (one per workflow, so fields can be added safely)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel

from postmortem.models import IncidentEvent, Source, Status
from postmortem.review.lifecycle import Actor


class PostmortemWorkflowInput(BaseModel):
    postmortem_id: str
    event: IncidentEvent
    # The inbox entry the event was relayed from: the incident's raw payload stays there (the event's
    # `incident.raw` is then empty), so no delivery can exceed Temporal's blob or decoding limits.
    # None in histories from before the inbox, whose events still carry their raw payload.
    delivery_id: str | None = None


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


class CancelRequest(BaseModel):
    reason: str
    requested_by: str | None = None


class SubmitRequest(BaseModel):
    actor: Actor
    reviewers: list[str]


class DecisionRequest(BaseModel):
    actor: Actor
    comment: str | None = None


class TransitionRequest(BaseModel):
    actor: Actor


class LinkRequest(BaseModel):
    actor: Actor
    source: Source
    incident_id: str
