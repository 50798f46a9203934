"""Steps of the review meeting: plan it, change it, and deliver each revision of the invite once.

Every delivery has a deterministic key (post-mortem, channel, revision, method) recorded in the
store and checked before sending, so a retried activity never sends a second invite. CalDAV writes
are idempotent anyway (one resource per meeting, overwritten in place).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import httpx
from icalendar import Calendar
from pydantic import AwareDatetime, BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from postmortem.activities.upstream import activity_error
from postmortem.incident.teams import TeamSettings
from postmortem.integrations.caldav_calendar import CalDavCalendar
from postmortem.integrations.email_invite import SmtpMailer, invite_message
from postmortem.integrations.http_errors import UpstreamError
from postmortem.meeting.agenda import agenda_text, build_agenda
from postmortem.meeting.invite import build_invite
from postmortem.meeting.models import Attendee, Meeting, MeetingStatus
from postmortem.meeting.scheduling import find_slot, meeting_minutes
from postmortem.models import Language, Severity
from postmortem.report.formatting import format_local
from postmortem.store.meetings import MeetingStore

log = logging.getLogger(__name__)
Channel = Literal["email", "caldav"]


@dataclass
class MeetingConfig:
    public_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_from: str = "postmortem@localhost"
    caldav_url: str | None = None
    caldav_username: str | None = None
    caldav_password: str | None = None
    video_url_template: str | None = None
    http_timeout_seconds: float = 15.0


class PlanMeetingInput(BaseModel):
    postmortem_id: str
    title: str
    severity: Severity | None
    resolved_at: AwareDatetime | None
    language: Language
    team: TeamSettings
    now: AwareDatetime


class SendInviteInput(BaseModel):
    postmortem_id: str
    sequence: int
    channel: Channel
    now: AwareDatetime


class DeliveryResult(BaseModel):
    channel: Channel
    key: str
    sent: bool
    detail: str


class ReviseMeetingInput(BaseModel):
    postmortem_id: str
    from_sequence: int
    now: AwareDatetime
    start: AwareDatetime | None = None
    cancel: bool = False


def _retryable(exc: UpstreamError) -> ApplicationError:
    return activity_error(exc, "UpstreamRefused" if exc.permanent else "UpstreamUnavailable")


def delivery_key(meeting: Meeting, channel: Channel) -> str:
    method = "CANCEL" if meeting.status == MeetingStatus.CANCELLED else "REQUEST"
    return f"{meeting.postmortem_id}:invite:{channel}:{meeting.sequence}:{method}"


class MeetingActivities:
    def __init__(self, meetings: MeetingStore, config: MeetingConfig) -> None:
        self._meetings = meetings
        self._config = config

    def _calendar(self, http: httpx.AsyncClient) -> CalDavCalendar | None:
        if not self._config.caldav_url:
            return None
        return CalDavCalendar(self._config.caldav_url, self._config.caldav_username, self._config.caldav_password, http)

    @activity.defn(name="plan_meeting")
    async def plan_meeting(self, input: PlanMeetingInput) -> Meeting:
        existing = await self._meetings.get(input.postmortem_id)
        if existing is not None:
            return existing  # planned already (a retry, or a replayed step): never move it silently
        team = input.team
        minutes = meeting_minutes(team.meeting, input.severity)
        resolved = input.resolved_at or input.now
        busy: list[tuple] = []
        async with httpx.AsyncClient(timeout=self._config.http_timeout_seconds) as http:
            calendar = self._calendar(http)
            if calendar is not None:
                try:
                    busy = await calendar.busy_times(min(resolved, input.now), input.now + timedelta(days=28))
                except UpstreamError as exc:
                    if not exc.permanent:
                        raise _retryable(exc) from exc
                    log.warning("free/busy unavailable, scheduling without it: %s", exc)
        zone = ZoneInfo(team.timezone)
        busy = [tuple(t if t.tzinfo else t.replace(tzinfo=zone) for t in interval) for interval in busy]
        try:
            slot = find_slot(resolved_at=resolved, now=input.now, policy=team.meeting, minutes=minutes, busy=busy)
        except ValueError as exc:  # the team's meeting rules cannot be met: retrying will not help
            raise ApplicationError(f"cannot schedule the review meeting: {exc}", non_retryable=True) from exc
        organizer = Attendee(email=team.organizer or self._config.smtp_from)
        attendees: dict[str, Attendee] = {}
        for person in [
            *team.responders,
            *(Attendee(email=o) for o in team.owners),
            *(Attendee(email=a, required=False) for a in team.attendees),
        ]:
            attendees.setdefault(person.email.casefold(), person)
        attendees.pop(organizer.email.casefold(), None)
        uid = f"{input.postmortem_id}@postmortem"
        meeting = Meeting(
            postmortem_id=input.postmortem_id,
            uid=uid,
            sequence=0,
            language=input.language,
            title=("复盘会议：" if input.language == Language.ZH else "Post-mortem review: ") + input.title,
            start=slot.start,
            end=slot.end,
            timezone=team.timezone,
            organizer=organizer,
            attendees=list(attendees.values()),
            agenda=build_agenda(minutes, input.language),
            report_url=f"{self._config.public_url}/api/postmortems/{input.postmortem_id}?format=markdown",
            video_url=(
                self._config.video_url_template.format(postmortem_id=input.postmortem_id, uid=uid)
                if self._config.video_url_template
                else None
            ),
        )
        return await self._meetings.create_if_absent(meeting, input.now)

    @activity.defn(name="revise_meeting")
    async def revise_meeting(self, input: ReviseMeetingInput) -> Meeting:
        """A new time or a cancellation, as the next revision; applied once however often retried."""
        meeting = await self._meetings.get(input.postmortem_id)
        if meeting is None:
            raise ApplicationError(f"post-mortem {input.postmortem_id} has no meeting", non_retryable=True)
        if meeting.sequence > input.from_sequence:
            return meeting
        changes: dict[str, object] = {"sequence": meeting.sequence + 1}
        if input.cancel:
            changes["status"] = MeetingStatus.CANCELLED
        if input.start is not None:
            changes.update(start=input.start, end=input.start + (meeting.end - meeting.start))
        return await self._meetings.save_revision(meeting.model_copy(update=changes), input.now)

    @activity.defn(name="send_invite")
    async def send_invite(self, input: SendInviteInput) -> DeliveryResult:
        meeting = await self._meetings.get(input.postmortem_id)
        if meeting is None:
            raise ApplicationError(f"post-mortem {input.postmortem_id} has no meeting", non_retryable=True)
        key = delivery_key(meeting, input.channel)
        if meeting.sequence != input.sequence:
            return DeliveryResult(
                channel=input.channel, key=key, sent=False, detail=f"superseded by revision {meeting.sequence}"
            )
        if await self._meetings.delivered(key):
            return DeliveryResult(channel=input.channel, key=key, sent=False, detail="already sent")
        try:
            detail = await (self._send_email if input.channel == "email" else self._put_calendar)(meeting, input)
        except UpstreamError as exc:
            raise _retryable(exc) from exc
        if detail is None:
            return DeliveryResult(channel=input.channel, key=key, sent=False, detail="not configured")
        await self._meetings.record_delivery(key, meeting.postmortem_id, input.channel, detail, input.now)
        return DeliveryResult(channel=input.channel, key=key, sent=True, detail=detail)

    def description(self, meeting: Meeting, language: Language) -> str:
        header = "议程" if language == Language.ZH else "Agenda"
        report = "复盘报告草稿" if language == Language.ZH else "Draft report"
        note = (
            "对事不对人：我们讨论系统与决策，而不是追究个人。"
            if language == Language.ZH
            else "Blameless: we discuss systems and decisions, not people's mistakes."
        )
        lines = [f"{header}:", agenda_text(meeting.agenda, language), "", f"{report}: {meeting.report_url}"]
        if meeting.video_url:
            lines.append(f"Video: {meeting.video_url}")
        return "\n".join([*lines, "", note])

    def invite(self, meeting: Meeting, now: datetime) -> bytes:
        method = "CANCEL" if meeting.status == MeetingStatus.CANCELLED else "REQUEST"
        return build_invite(meeting, method=method, now=now, description=self.description(meeting, meeting.language))

    async def _send_email(self, meeting: Meeting, input: SendInviteInput) -> str | None:
        if not self._config.smtp_host:
            return None
        ics = self.invite(meeting, input.now)
        method = "CANCEL" if meeting.status == MeetingStatus.CANCELLED else "REQUEST"
        when = format_local(meeting.start, meeting.timezone)
        message = invite_message(
            meeting,
            ics,
            method=method,
            sender=self._config.smtp_from,
            body_text=f"{meeting.title}\n{when}\n\n{self.description(meeting, meeting.language)}",
        )
        mailer = SmtpMailer(
            self._config.smtp_host,
            self._config.smtp_port,
            self._config.smtp_username,
            self._config.smtp_password,
            self._config.smtp_starttls,
            self._config.http_timeout_seconds,
        )
        await mailer.send(message)
        return f"emailed {method} revision {meeting.sequence} to {len(meeting.attendees)} attendee(s)"

    async def _put_calendar(self, meeting: Meeting, input: SendInviteInput) -> str | None:
        if not self._config.caldav_url:
            return None
        calendar_object = Calendar.from_ical(self.invite(meeting, input.now))
        calendar_object.pop("METHOD", None)  # RFC 4791: a stored calendar object carries no METHOD
        async with httpx.AsyncClient(timeout=self._config.http_timeout_seconds) as http:
            calendar = self._calendar(http)
            assert calendar is not None
            await calendar.put_event(meeting.uid, calendar_object.to_ical())
        return f"calendar event {meeting.uid} at revision {meeting.sequence}"
