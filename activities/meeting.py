"""Steps of the review meeting: plan it, change it, and deliver each revision of the invite once.

Every delivery has a deterministic key (post-mortem, channel, revision, method) recorded in the
store and checked before sending, so a retried activity never sends a second invite. A retry after an
attempt that never heard back (a worker killed between the upstream's yes and our record) asks the
calendar first whether it holds that revision; SMTP cannot be asked, and a resent invite is the very
same message (Message-ID, UID, SEQUENCE, DTSTAMP), which mail and calendar clients treat as one.
Email invites go one copy per person, each with the report link signed for that person (a link in
an invite opens the page as whoever got it); each copy is recorded on its own.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar
from pydantic import AwareDatetime, BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from postmortem.activities.clients import OutsideClients
from postmortem.activities.page_links import PageLinks
from postmortem.activities.upstream import activity_error
from postmortem.config import CalDavSettings, HttpSettings, MeetingSettings, ServerSettings, SmtpSettings, reveal
from postmortem.incident.teams import TeamSettings
from postmortem.integrations.caldav_calendar import CalDavCalendar
from postmortem.integrations.email_invite import RECIPIENTS_REFUSED, invite_message
from postmortem.integrations.http_errors import UpstreamError
from postmortem.meeting.agenda import build_agenda
from postmortem.meeting.invite import (
    invite_description,
    invite_method,
    meeting_invite,
    meeting_title,
    unique_attendees,
)
from postmortem.meeting.models import Attendee, Meeting, MeetingStatus
from postmortem.meeting.scheduling import find_slot, meeting_minutes
from postmortem.models import Language, Severity
from postmortem.review import signed_links
from postmortem.store.meetings import MeetingStore

log = logging.getLogger(__name__)
Channel = Literal["email", "caldav"]


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
    """`clients` are the worker's shared ones (`OutsideClients`); without them this object builds its
    own, once, for the CalDAV and SMTP these sections configure (closed by `aclose`). `links` signs the
    report link in each person's email invite."""

    def __init__(
        self,
        meetings: MeetingStore,
        *,
        meeting: MeetingSettings | None = None,
        smtp: SmtpSettings | None = None,
        caldav: CalDavSettings | None = None,
        server: ServerSettings | None = None,
        http: HttpSettings | None = None,
        clients: OutsideClients | None = None,
        links: PageLinks | None = None,
    ) -> None:
        self._meetings = meetings
        self._links = links  # signs each person's link in their invite; without it, the plain page URL
        self._meeting = meeting or MeetingSettings()
        self._smtp = smtp or SmtpSettings()
        self._caldav = caldav or CalDavSettings()
        self._public_url = (server or ServerSettings()).resolved_public_url
        self._owned = clients is None
        self._clients = clients or OutsideClients.configured(caldav=self._caldav, smtp=self._smtp, http=http)
        # Not configured: None, and planning or sending costs nothing on that channel.
        c = self._clients
        self._calendar = (
            CalDavCalendar(self._caldav.url, self._caldav.username, reveal(self._caldav.password), c.caldav)
            if self._caldav.url and c.caldav is not None
            else None
        )
        self._mailer = c.smtp if self._smtp.host else None

    async def aclose(self) -> None:
        """Close the clients this object built itself (the worker closes its shared ones)."""
        if self._owned:
            await self._clients.aclose()

    def invite_channels(self) -> list[str]:
        """The channels this worker can send invites on: the workflow schedules no delivery on the others."""
        return [channel for channel, sender in (("email", self._mailer), ("caldav", self._calendar)) if sender]

    @activity.defn(name="plan_meeting")
    async def plan_meeting(self, input: PlanMeetingInput) -> Meeting:
        existing = await self._meetings.get(input.postmortem_id)
        if existing is not None:
            return existing  # planned already (a retry, or a replayed step): never move it silently
        team = input.team
        minutes = meeting_minutes(team.meeting, input.severity)
        resolved = input.resolved_at or input.now
        busy: list[tuple] = []
        if (calendar := self._calendar) is not None:
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
        organizer = Attendee(email=team.organizer or self._smtp.sender)
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
            title=meeting_title(input.language, input.title),
            start=slot.start,
            end=slot.end,
            timezone=team.timezone,
            organizer=organizer,
            attendees=list(attendees.values()),
            agenda=build_agenda(minutes, input.language),
            report_url=signed_links.page_url(self._public_url, input.postmortem_id),  # several people: sign in
            video_url=(
                self._meeting.video_url_template.format(postmortem_id=input.postmortem_id, uid=uid)
                if self._meeting.video_url_template
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
        if (self._mailer if input.channel == "email" else self._calendar) is None:
            return DeliveryResult(channel=input.channel, key=key, sent=False, detail="not configured")
        if await self._meetings.delivered(key):
            return DeliveryResult(channel=input.channel, key=key, sent=False, detail="already sent")
        earlier = await self._meetings.begin_delivery(key, meeting.postmortem_id, input.channel, datetime.now(UTC))
        try:
            if earlier is not None and input.channel == "caldav" and await self._calendar_holds(meeting):
                found = f"calendar event {meeting.uid} at revision {meeting.sequence} (found)"
                await self._meetings.record_delivery(key, meeting.postmortem_id, input.channel, found, input.now)
                return DeliveryResult(channel=input.channel, key=key, sent=True, detail=found)
            detail = await (self._send_email if input.channel == "email" else self._put_calendar)(meeting, input)
        except UpstreamError as exc:
            raise _retryable(exc) from exc
        if detail is None:
            return DeliveryResult(channel=input.channel, key=key, sent=False, detail="not configured")
        await self._meetings.record_delivery(key, meeting.postmortem_id, input.channel, detail, input.now)
        return DeliveryResult(channel=input.channel, key=key, sent=True, detail=detail)

    async def _send_email(self, meeting: Meeting, input: SendInviteInput) -> str | None:
        """Each person their own copy (the organizer too: it puts the event in their calendar), with the
        report link signed for them; a copy already recorded is not sent again, so a retry after a
        crash between two copies resends none of the earlier ones."""
        mailer = self._mailer
        if mailer is None:
            return None
        method = invite_method(meeting)
        attendees = unique_attendees(meeting.attendees)
        invited = {person.email.strip().casefold() for person in attendees}
        people = attendees + ([meeting.organizer] if meeting.organizer.email.strip().casefold() not in invited else [])
        key = delivery_key(meeting, input.channel)
        refused: list[UpstreamError] = []
        for person in people:
            copy_key = f"{key}:to:{person.email.strip().casefold()}"
            if await self._meetings.delivered(copy_key):
                continue
            await self._meetings.begin_delivery(copy_key, meeting.postmortem_id, input.channel, datetime.now(UTC))
            link = (
                await self._links.for_people(meeting.postmortem_id, [person.email], input.now) if self._links else None
            )
            personal = meeting.model_copy(update={"report_url": link}) if link else meeting
            ics = meeting_invite(personal, input.now)
            message = invite_message(
                personal,
                ics,
                method=method,
                sender=self._smtp.sender,
                body_text=f"{meeting.title}\n\n{invite_description(personal)}",  # the description says when
                recipients=attendees,
                copy_for=person,
            )
            try:
                await mailer.send(message)
            except UpstreamError as exc:
                if not (exc.permanent and exc.code == RECIPIENTS_REFUSED):
                    raise  # the relay itself: retried (or a problem), the copies already sent are not sent again
                refused.append(exc)  # this person's address is refused for good: the others still get theirs
                continue
            await self._meetings.record_delivery(
                copy_key, meeting.postmortem_id, input.channel, f"emailed {method} to {person.email}", input.now
            )
        if refused:  # for good: a problem on the report; its retry sends the copies still missing
            raise refused[0]
        return f"emailed {method} revision {meeting.sequence} to {len(people)} people, each their own copy"

    async def _put_calendar(self, meeting: Meeting, input: SendInviteInput) -> str | None:
        calendar = self._calendar
        if calendar is None:
            return None
        calendar_object = Calendar.from_ical(meeting_invite(meeting, input.now))
        calendar_object.pop("METHOD", None)  # RFC 4791: a stored calendar object carries no METHOD
        await calendar.put_event(meeting.uid, calendar_object.to_ical())
        return f"calendar event {meeting.uid} at revision {meeting.sequence}"

    async def _calendar_holds(self, meeting: Meeting) -> bool:
        """Whether the calendar has this revision (or a later one) of the meeting already."""
        calendar = self._calendar
        stored = await calendar.get_event(meeting.uid) if calendar is not None else None
        if stored is None:
            return False
        for event in Calendar.from_ical(stored).walk("VEVENT"):
            if str(event.get("UID")) != meeting.uid:
                continue
            cancelled = str(event.get("STATUS", "")).upper() == "CANCELLED"
            if int(event.get("SEQUENCE", 0)) >= meeting.sequence and cancelled == (
                meeting.status == MeetingStatus.CANCELLED
            ):
                return True
        return False
