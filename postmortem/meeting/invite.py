"""The review meeting as an iTIP object (RFC 5545 iCalendar, RFC 5546 methods): what calendars read.

`build_invite` gives the bytes of one VCALENDAR with one VEVENT, the same UID for every revision
of a post-mortem's meeting and SEQUENCE going up with each change, so that every calendar updates
the event it already has instead of adding a second one. Start and end are written as wall time
in the team's time zone (DTSTART;TZID=Europe/Berlin:...) with the VTIMEZONE that defines it, as
RFC 5545 requires for every TZID used. `meeting_invite` is that object for a meeting's current
revision (REQUEST, or CANCEL once cancelled) with its agenda as the description: the activity that
sends it and the route that downloads it both call it.

The VTIMEZONE is built here rather than with icalendar's `Timezone.from_tzid`: icalendar 7.3 writes
the onset of a DAYLIGHT observance as the wall time *after* the change (DTSTART:20260329T030000
with TZOFFSETFROM:+0100 for Berlin), which a client that reads the VTIMEZONE (no tz database of
its own for that TZID) takes as an hour too late. RFC 5545 §3.6.5 wants the onset in the offset
that was in force before it (20260329T020000).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress, vUri

from postmortem.meeting.agenda import agenda_text, in_language
from postmortem.meeting.models import Attendee, Meeting, MeetingStatus
from postmortem.models import Language
from postmortem.report.formatting import format_local

PRODID = "-//postmortem-autopilot//Post-mortem review//EN"
REMINDER = timedelta(minutes=-15)
TITLE_PREFIX = {Language.EN: "Post-mortem review: ", Language.ZH: "复盘会议："}
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"})


def build_invite(meeting: Meeting, *, method: Literal["REQUEST", "CANCEL"], now: datetime, description: str) -> bytes:
    """The meeting as an iCalendar object for `method` (CRLF lines, folded at 75 octets).

    REQUEST invites (or re-invites, for a new SEQUENCE) every attendee and carries a 15-minute
    display reminder; CANCEL carries the same UID with STATUS:CANCELLED and, as RFC 5546 §3.2.5
    demands, no VALARM. Every attendee gets RSVP=TRUE, so clients show Accept/Decline, and
    PARTSTAT=NEEDS-ACTION, except the organizer when also listed as an attendee: ACCEPTED, as
    Google Calendar writes its own organizers.
    """
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported iTIP method: {method!r}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(meeting.timezone)
    in_utc = meeting.timezone in _UTC_NAMES

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    if not in_utc:
        calendar.add_component(vtimezone(meeting.timezone, meeting.start, meeting.end))

    event = Event()
    event.add("uid", meeting.uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", _utc(now))
    if in_utc:  # a UTC time needs no VTIMEZONE: written as 20260330T080000Z
        event.add("dtstart", _utc(meeting.start))
        event.add("dtend", _utc(meeting.end))
    else:
        event.add("dtstart", meeting.start.astimezone(zone))
        event.add("dtend", meeting.end.astimezone(zone))
    event.add("summary", meeting.title)
    event.add("description", description)
    event.add("url", meeting.report_url)
    if meeting.video_url:
        event.add("location", meeting.video_url)
        # RFC 7986 CONFERENCE: clients that know it show a "Join" button, the others ignore it.
        event.add(
            "conference", vUri(meeting.video_url), parameters={"VALUE": "URI", "FEATURE": "VIDEO", "LABEL": "Join"}
        )
    event.add("organizer", _address(meeting.organizer))
    organizer = meeting.organizer.email.strip().lower()
    for attendee in unique_attendees(meeting.attendees):
        is_organizer = attendee.email.strip().lower() == organizer
        if is_organizer and not attendee.name:
            attendee = attendee.model_copy(update={"name": meeting.organizer.name})
        event.add("attendee", _attendee(attendee, is_organizer=is_organizer))
    event.add("status", "CONFIRMED" if method == "REQUEST" else "CANCELLED")
    event.add("transp", "OPAQUE")
    if method == "REQUEST":
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", REMINDER)
        alarm.add("description", f"Reminder: {meeting.title}")
        event.add_component(alarm)
    calendar.add_component(event)
    return calendar.to_ical()


def invite_method(meeting: Meeting) -> Literal["REQUEST", "CANCEL"]:
    return "CANCEL" if meeting.status == MeetingStatus.CANCELLED else "REQUEST"


def invite_description(meeting: Meeting) -> str:
    """The event's text in the meeting's language: when (in the meeting's zone, UTC beside it), agenda,
    draft report, video link, the blameless rule."""
    chinese = meeting.language == Language.ZH
    header = "议程" if chinese else "Agenda"
    report = "复盘报告草稿" if chinese else "Draft report"
    note = (
        "对事不对人：我们讨论系统与决策，而不是追究个人。"
        if chinese
        else "Blameless: we discuss systems and decisions, not people's mistakes."
    )
    start, end = format_local(meeting.start, meeting.timezone), format_local(meeting.end, meeting.timezone)
    when = f"时间：{start} – {end}" if chinese else f"When: {start} – {end}"
    lines = [
        when,
        "",
        f"{header}:",
        agenda_text(meeting.agenda, meeting.language),
        "",
        f"{report}: {meeting.report_url}",
    ]
    if meeting.video_url:
        lines.append(f"{'视频会议' if chinese else 'Video'}: {meeting.video_url}")
    return "\n".join([*lines, "", note])


def meeting_title(language: Language, incident_title: str) -> str:
    return TITLE_PREFIX[language] + incident_title


def in_voice(meeting: Meeting, language: Language, zone: str | None = None) -> Meeting:
    """The meeting in the report's language and zone (one voice: a report whose language or zone
    changed after the meeting was planned invites in its new ones): our title prefix and agenda titles
    swapped, what people wrote kept; its times written in `zone`, the same instants."""
    zone = zone or meeting.timezone
    if meeting.language == language and meeting.timezone == zone:
        return meeting
    title = meeting.title
    for prefix in TITLE_PREFIX.values():
        if title.startswith(prefix):
            title = meeting_title(language, title[len(prefix) :])
            break
    return meeting.model_copy(
        update={
            "language": language,
            "title": title,
            "agenda": in_language(meeting.agenda, language),
            "timezone": zone,
        }
    )


def meeting_invite(meeting: Meeting, now: datetime) -> bytes:
    """The current revision's invite (a CANCEL once cancelled): the one object that is emailed, written to
    the calendar and downloaded, so the three never differ. Needs no settings: all it says is in `meeting`."""
    return build_invite(meeting, method=invite_method(meeting), now=now, description=invite_description(meeting))


def unique_attendees(attendees: list[Attendee]) -> list[Attendee]:
    """One entry per address (case-insensitive), in order; required if any listing says so."""
    seen: dict[str, Attendee] = {}
    for attendee in attendees:
        key = attendee.email.strip().lower()
        if key in seen:
            first = seen[key]
            seen[key] = first.model_copy(
                update={"required": first.required or attendee.required, "name": first.name or attendee.name}
            )
        else:
            seen[key] = attendee
    return list(seen.values())


def vtimezone(tzid: str, start: datetime, end: datetime) -> Timezone:
    """A VTIMEZONE for `tzid` from the year before `start` to the year after `end`.

    The year before matters: a reader puts a time earlier than the first onset in the first
    STANDARD observance, which is wrong for a meeting on New Year's Day in a southern summer.

    Each change of offset is found in the tz database and written with its onset in the offset
    that was in force before it (RFC 5545 §3.6.5); repeated changes of the same kind become RDATEs.
    """
    zone = ZoneInfo(tzid)
    first = datetime(start.astimezone(zone).year - 1, 1, 1, tzinfo=UTC)
    last = datetime(end.astimezone(zone).year + 2, 1, 1, tzinfo=UTC)
    observances: dict[tuple[bool, timedelta, timedelta, str], list[datetime]] = defaultdict(list)
    state = _state(zone, first)
    observances[(state[2], state[0], state[0], state[1])].append((first + state[0]).replace(tzinfo=None))
    step = timedelta(hours=6)
    moment = first
    while moment < last:
        following = moment + step
        new_state = _state(zone, following)
        if new_state != state:
            change = _transition(zone, moment, following, state)
            offset_from = state[0]
            state = _state(zone, change)
            observances[(state[2], offset_from, state[0], state[1])].append((change + offset_from).replace(tzinfo=None))
        moment = following

    component = Timezone()
    component.add("tzid", tzid)
    for (is_dst, offset_from, offset_to, name), onsets in observances.items():
        observance = TimezoneDaylight() if is_dst else TimezoneStandard()
        observance.add("dtstart", onsets[0])
        for onset in onsets[1:]:
            observance.add("rdate", onset)
        observance.add("tzoffsetfrom", offset_from)
        observance.add("tzoffsetto", offset_to)
        observance.add("tzname", name)
        component.add_component(observance)
    return component


def _state(zone: tzinfo, moment: datetime) -> tuple[timedelta, str, bool]:
    local = moment.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    return offset, local.tzname() or _offset_name(offset), bool(local.dst())


def _transition(zone: tzinfo, before: datetime, after: datetime, state: tuple[timedelta, str, bool]) -> datetime:
    """The first whole second in (before, after] whose state differs from `state`."""
    low, high = 0, int((after - before).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        if _state(zone, before + timedelta(seconds=middle)) == state:
            low = middle
        else:
            high = middle
    return before + timedelta(seconds=high)


def _offset_name(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _address(person: Attendee) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email.strip()}")
    if person.name:
        address.params["CN"] = person.name
    return address


def _attendee(person: Attendee, *, is_organizer: bool) -> vCalAddress:
    address = _address(person)
    address.params["CUTYPE"] = "INDIVIDUAL"
    address.params["ROLE"] = "REQ-PARTICIPANT" if person.required else "OPT-PARTICIPANT"
    address.params["PARTSTAT"] = "ACCEPTED" if is_organizer else "NEEDS-ACTION"
    address.params["RSVP"] = "TRUE"
    return address
