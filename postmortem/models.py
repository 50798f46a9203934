"""The domain as data: incidents from any source, post-mortems, their sections and action items.

These models cross the Temporal boundary, so they carry no default factories that read the clock
or randomness: whoever builds one inside a workflow passes `workflow.now()` explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Source(StrEnum):
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    JSM = "jsm"  # Jira Service Management Operations: Opsgenie's alerting moved there


class Severity(StrEnum):
    """One scale for every source; SEV1 is the worst."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def rank(self) -> int:
        return int(self.value[-1])


class Language(StrEnum):
    EN = "en"
    ZH = "zh"


class TemplateVariant(StrEnum):
    AUTO = "auto"
    FULL = "full"
    LIGHTWEIGHT = "lightweight"
    STATUS_PAGE = "status_page"
    REGULATED = "regulated"


class Status(StrEnum):
    DRAFT = "DRAFT"
    IN_REVIEW = "IN_REVIEW"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"
    SKIPPED = "SKIPPED"


class Visibility(StrEnum):
    PRIVATE = "private"  # admins, its author and its reviewers
    TEAM = "team"  # also the tokens of its team
    ORGANISATION = "organisation"  # every token


class CauseCategory(StrEnum):
    PROCESS = "process"
    OBSERVABILITY = "observability"
    CHANGE_MANAGEMENT = "change_management"
    CAPACITY = "capacity"
    DEPENDENCY = "dependency"
    CODE = "code"
    CONFIGURATION = "configuration"
    SECURITY = "security"
    OTHER = "other"


class Priority(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class ActionItemStatus(StrEnum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    WONT_DO = "WONT_DO"


# --- Ticket states: the one mapping from a tracker's state to an action item's status -------------
# Here, with the models, because every reader of a tracker needs it: the ticket clients
# (integrations/, which import nothing of ours but models), the tracker webhooks and the sync.

TicketState = Literal["open", "in_progress", "done", "wont_do"]
"""A ticket's state in any tracker, in our words."""

TICKET_STATUS: Mapping[TicketState, ActionItemStatus] = {
    "open": ActionItemStatus.OPEN,
    "in_progress": ActionItemStatus.IN_PROGRESS,
    "done": ActionItemStatus.COMPLETED,
    "wont_do": ActionItemStatus.WONT_DO,
}

# A done Jira issue closed with one of these resolutions (or sitting in a status of that name:
# team-managed projects often have no resolution field) was dropped, not done. Compared after
# `_plain`, so "Won’t Fix" (typographic apostrophe) and "WONT  DO" count too.
JIRA_WONT_DO = frozenset(
    {"won't do", "won't fix", "wont do", "wont fix", "declined", "duplicate", "cancelled", "canceled"}
)


def jira_ticket_state(category: str | None, resolution: str | None = None, status: str | None = None) -> TicketState:
    """A Jira issue's state from `fields.status.statusCategory.key`, the resolution name and the status name.

    The category keys are "new", "indeterminate", "done" and "undefined" (tests/fixtures/
    jira_statuscategories_response.json; never the OpenAPI example's "in-flight"): only "done" is
    finished, and only "indeterminate" is being worked on. A stale resolution on an issue that is
    active again does not make it dropped.
    """
    if category == "done":
        dropped = any(name is not None and _plain(name) in JIRA_WONT_DO for name in (resolution, status))
        return "wont_do" if dropped else "done"
    return "in_progress" if category == "indeterminate" else "open"


def github_ticket_state(state: str | None, state_reason: str | None = None) -> TicketState:
    """open → open; closed as not planned (or as a duplicate) → wont_do; closed otherwise → done.
    GitHub has no "in progress"; anything but "closed" is open."""
    if state != "closed":
        return "open"
    return "wont_do" if state_reason in ("not_planned", "duplicate") else "done"


def linear_ticket_state(state_type: str | None) -> TicketState:
    """Linear's `WorkflowState.type`: completed → done, canceled/duplicate → wont_do, started →
    in_progress, triage/backlog/unstarted (or none) → open."""
    if state_type == "completed":
        return "done"
    if state_type in ("canceled", "duplicate"):
        return "wont_do"
    return "in_progress" if state_type == "started" else "open"


def _plain(name: str) -> str:
    return " ".join(name.replace("\u2019", "'").lower().split())


class Ref(BaseModel):
    """A named thing in a source (service, team), with the source's id when it has one."""

    id: str | None = None
    name: str


class Person(BaseModel):
    id: str | None = None
    name: str | None = None
    email: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.email or self.id or "unknown"


ResponderRole = Literal["assigned", "acknowledged", "escalated_to", "reassigned_to", "resolved", "wrote_note"]
"""What a person did in an incident, in the order a report lists it (rendering names it per language)."""

RESPONDER_ROLES: tuple[ResponderRole, ...] = (
    "assigned",
    "acknowledged",
    "escalated_to",
    "reassigned_to",
    "resolved",
    "wrote_note",
)


class Responder(BaseModel):
    """Someone who acted in an incident, once across every source, with what they did."""

    name: str | None = None
    email: str | None = None
    roles: list[ResponderRole] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name or self.email or "unknown"


class Link(BaseModel):
    title: str
    url: str


class Incident(BaseModel):
    """One incident from one source, normalised; `raw` keeps the delivery as evidence."""

    source: Source
    id: str
    number: str | None = None
    title: str
    services: list[Ref] = Field(default_factory=list)
    teams: list[Ref] = Field(default_factory=list)
    severity: Severity
    urgency: str | None = None
    priority: str | None = None
    created_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    responders: list[Person] = Field(default_factory=list)
    resolved_by: Person | None = None
    links: list[Link] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    customer_impact: bool = False
    data_loss: bool = False
    security: bool = False
    raw: dict[str, Any] = Field(default_factory=dict)

    def summary(self) -> Incident:
        """The same incident without the raw payload, for places that must stay small."""
        return self.model_copy(update={"raw": {}})


class EventKind(StrEnum):
    RESOLVED = "resolved"
    OTHER = "other"


class IncidentEvent(BaseModel):
    """One webhook delivery, normalised."""

    source: Source
    event_id: str | None = None
    event_type: str
    kind: EventKind
    occurred_at: AwareDatetime | None = None
    incident: Incident


class PolicyOutcome(StrEnum):
    FULL = "full"
    LIGHTWEIGHT = "lightweight"
    SKIP = "skip"


class PolicyDecision(BaseModel):
    outcome: PolicyOutcome
    reasons: list[str]


class Section(BaseModel):
    key: str
    title: str
    prompt: str = ""
    required: bool = False
    body: str = ""
    edited: bool = False
    # Who wrote the body when it was not our template: "model <name>" for the optional narrative
    # step (postmortem.report.narrative). Shown on the section until a person edits it.
    drafted_by: str | None = None


class KeyMetrics(BaseModel):
    highest_severity: Severity | None = None
    impact_started_at: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    detected_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    duration_seconds: int | None = None
    time_to_detect_seconds: int | None = None
    time_to_acknowledge_seconds: int | None = None
    time_to_resolve_seconds: int | None = None
    responders: list[str] = Field(default_factory=list, description="the labels of `people`")
    people: list[Responder] = Field(default_factory=list, description="everyone who acted, with their roles")
    services: list[str] = Field(default_factory=list)
    incident_count: int = 0


class ActionItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    description: str
    owner: str | None = None
    due_date: date | None = None
    priority: Priority = Priority.MEDIUM
    status: ActionItemStatus = ActionItemStatus.OPEN
    ticket_key: str | None = None
    ticket_url: str | None = None
    ticket_tracker: str | None = None
    completed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class SimilarReport(BaseModel):
    """A past report like this one ("have we seen this before?"), as its readers may see it now."""

    id: str
    title: str
    status: Status
    created_at: datetime
    services: list[str] = Field(default_factory=list)
    cause_category: CauseCategory | None = None
    score: float = Field(description="the store's full-text rank; higher is more alike")
    open_action_items: list[str] = Field(default_factory=list, description="descriptions of its open items")


class Postmortem(BaseModel):
    """The document as the store has it."""

    id: str
    title: str
    status: Status
    team: str | None = None
    services: list[str] = Field(default_factory=list)
    language: Language
    variant: TemplateVariant
    timezone: str
    severity: Severity | None = None
    decision: PolicyDecision | None = None
    sections: list[Section] = Field(default_factory=list)
    metrics: KeyMetrics = Field(default_factory=KeyMetrics)
    incidents: list[Incident] = Field(default_factory=list)
    action_items: list[ActionItem] = Field(default_factory=list)
    workflow_id: str
    visibility: Visibility = Visibility.ORGANISATION
    author: str | None = None
    cause_category: CauseCategory | None = None
    template_name: str | None = Field(default=None, description="a team's own template, when one is used")
    similar: list[SimilarReport] = Field(
        default_factory=list, description="up to five similar past reports this report's readers may see"
    )
    version: int
    created_at: datetime
    updated_at: datetime
