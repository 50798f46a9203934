"""Everything a PostmortemWorkflow needs to go on, in one model: what `@workflow.init` builds, what the
handlers change, and what a continued-as-new run starts from.

Steps are data (`Step`): the publication, tickets, the follow-up child, a delivery or a gather to
run again. The run's loop carries them out one by one, and a problem keeps the step that failed so
a retry runs exactly that step once more.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field

from postmortem.activities.link import RefreshIncidentInput
from postmortem.activities.review import NotifyInput, PeopleNoticeInput
from postmortem.evidence.models import EvidenceSource
from postmortem.incident.teams import TeamSettings
from postmortem.meeting.models import Meeting
from postmortem.models import Incident, Status
from postmortem.review.lifecycle import Review
from postmortem.review.problems import ProblemState


class _Step(BaseModel):
    # Set when the step runs as the retry of a problem (its key): success resolves the problem.
    retry_of: str | None = None


class PublishStep(_Step):
    """Render and store the exports of publication `count` (document `version`) and announce it."""

    kind: Literal["publish"] = "publish"
    count: int
    version: int | None = None


class TicketsStep(_Step):
    kind: Literal["tickets"] = "tickets"


class FollowUpStep(_Step):
    """Start the 30/60/90-day FollowUpWorkflow (after the first publication)."""

    kind: Literal["follow_up"] = "follow_up"


class InviteStep(_Step):
    kind: Literal["invite"] = "invite"
    sequence: int
    channel: Literal["email", "caldav"]


class PlanMeetingStep(_Step):
    kind: Literal["plan_meeting"] = "plan_meeting"
    incident: Incident


class NotifyStep(_Step):
    """A message to people (a reminder, an approval that lapsed, a new reviewer); `target` names it."""

    kind: Literal["notify"] = "notify"
    target: str
    notice: NotifyInput


class PeopleNoticeStep(_Step):
    """A message to people of one kind (notify-v2): one email each with their own signed link."""

    kind: Literal["notify_people"] = "notify_people"
    target: str
    notice: PeopleNoticeInput


class GatherStep(_Step):
    kind: Literal["gather"] = "gather"
    source: EvidenceSource
    incident: Incident


class RefreshIncidentStep(_Step):
    kind: Literal["refresh_incident"] = "refresh_incident"
    request: RefreshIncidentInput


class PushTicketStep(_Step):
    """Tell the ticket of action item `item_id` what the item says now (status, owner, due date)."""

    kind: Literal["push_ticket"] = "push_ticket"
    item_id: str


class SyncTicketsStep(_Step):
    """The follow-up's sync of its items with their tickets, for the check of `day`."""

    kind: Literal["sync_tickets"] = "sync_tickets"
    day: int


class FollowUpCheckStep(_Step):
    """The follow-up's check of `day` (recorded on the report; at the last one, the verdict)."""

    kind: Literal["follow_up_check"] = "follow_up_check"
    day: int
    final: bool = False


class NarrativeStep(_Step):
    """The optional model's narrative of the fresh draft (workflows/drafting.narrate)."""

    kind: Literal["narrative"] = "narrative"
    redact: bool = False
    redraft: bool = False  # after a refresh of the evidence: only the sections the model wrote
    # After a change of language or zone (narrative-language): these sections, which the model wrote
    # before the change gave them the deterministic text; never one a person edited since.
    sections: list[str] = Field(default_factory=list)


Step = Annotated[
    PublishStep
    | TicketsStep
    | PushTicketStep
    | FollowUpStep
    | InviteStep
    | PlanMeetingStep
    | NotifyStep
    | PeopleNoticeStep
    | GatherStep
    | RefreshIncidentStep
    | SyncTicketsStep
    | FollowUpCheckStep
    | NarrativeStep,
    Field(discriminator="kind"),
]


class ProblemEntry(BaseModel):
    """The workflow's side of a problem: its stable id, its count, and the step a retry runs."""

    id: str
    step: str
    target: str
    attempts: int = 1
    state: ProblemState = ProblemState.OPEN
    retry: Step


class PostmortemState(BaseModel):
    postmortem_id: str
    status: Status | None = None
    closed: bool = False  # deleted: the meeting was cancelled, the run ends
    started: bool = False  # drafted and planned: a continued run goes straight to the review loop
    review: Review | None = None
    meeting: Meeting | None = None
    team: TeamSettings | None = None
    resolved_at: AwareDatetime | None = None
    submitted_at: AwareDatetime | None = None
    reminded: dict[str, AwareDatetime] = Field(default_factory=dict)
    linked: list[tuple[str, str]] = Field(default_factory=list, description="(source, incident id), in link order")
    problems: dict[str, ProblemEntry] = Field(default_factory=dict, description="problem_key → entry")
    steps: list[Step] = Field(default_factory=list, description="what the run's loop does next, in order")
    follow_up_started: bool = False
    document_version: int | None = Field(default=None, description="the newest document version heard of")

    def is_linked(self, source: str, incident_id: str) -> bool:
        return (source, incident_id) in self.linked

    def link(self, source: str, incident_id: str) -> None:
        if not self.is_linked(source, incident_id):
            self.linked.append((source, incident_id))

    def unlink(self, source: str, incident_id: str) -> None:
        if self.is_linked(source, incident_id):
            self.linked.remove((source, incident_id))

    def problem(self, problem_id: str) -> tuple[str, ProblemEntry] | None:
        return next(((key, entry) for key, entry in self.problems.items() if entry.id == problem_id), None)

    @property
    def owners(self) -> list[str]:
        """Who is told about reminders and problems: the team's owners, else its organizer."""
        if self.team is None:
            return []
        return [o for o in (self.team.owners or [self.team.organizer or ""]) if o]
