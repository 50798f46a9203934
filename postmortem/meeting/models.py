"""The review meeting as data: when, who, what is on the agenda, and which revision of the invite."""

from __future__ import annotations

from datetime import time
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from postmortem.models import Language


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Attendee(BaseModel):
    email: str
    name: str | None = None
    required: bool = True


class AgendaItem(BaseModel):
    title: str
    minutes: int


class MeetingPolicy(BaseModel):
    """A team's meeting rules, in its own time zone."""

    timezone: str = "UTC"
    working_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], description="0 = Monday")
    working_hours: tuple[time, time] = (time(9, 0), time(17, 0))
    meeting_minutes: int = 60
    sev1_meeting_minutes: int = 90


class Slot(BaseModel):
    start: AwareDatetime
    end: AwareDatetime
    conflict: bool = Field(default=False, description="no free slot was found; this one overlaps busy time")


class Meeting(BaseModel):
    postmortem_id: str
    uid: str = Field(description="stable per post-mortem: every revision updates the same calendar event")
    sequence: int = Field(description="RFC 5545 SEQUENCE: goes up on every change")
    title: str
    start: AwareDatetime
    end: AwareDatetime
    timezone: str
    organizer: Attendee
    attendees: list[Attendee]
    agenda: list[AgendaItem]
    report_url: str
    video_url: str | None = None
    status: MeetingStatus = MeetingStatus.SCHEDULED
    language: Language = Language.EN
