"""Evidence: timeline entries gathered from every source, and the state of each source's gather."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from postmortem.models import Person


class EntryKind(StrEnum):
    IMPACT_START = "impact_start"
    ALERT_FIRED = "alert_fired"
    TRIGGERED = "triggered"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    REASSIGNED = "reassigned"
    NOTE = "note"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    ALERT_RESOLVED = "alert_resolved"
    MESSAGE = "message"


class EvidenceSource(StrEnum):
    WEBHOOK = "webhook"
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    JSM = "jsm"
    ALERTMANAGER = "alertmanager"
    SLACK = "slack"


class TimelineEntry(BaseModel):
    """One event with its evidence. `key` is unique per source item, so re-gathering never duplicates."""

    key: str
    at: AwareDatetime
    kind: EntryKind
    source: EvidenceSource
    text: str
    actor: str | None = None
    evidence_url: str | None = None
    incident_id: str | None = None
    also_in: list[EvidenceSource] = Field(default_factory=list, description="other sources with the same event")
    people: list[Person] = Field(
        default_factory=list,
        description="the people the event is about: who acknowledged, resolved or wrote it, or whom it was "
        "assigned or escalated to (never a service or an integration)",
    )


class GatherState(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    NOT_CONFIGURED = "not_configured"


class SourceStatus(BaseModel):
    source: EvidenceSource
    incident_id: str
    state: GatherState
    entries: int = 0
    detail: str | None = None
