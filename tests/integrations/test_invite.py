"""build_invite: the iCalendar object, read back by icalendar and by vobject (which uses our VTIMEZONE)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dateutil.tz
import pytest
import vobject
from icalendar import Calendar

from postmortem.meeting.invite import PRODID, build_invite, vtimezone
from postmortem.meeting.models import AgendaItem, Attendee, Meeting

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 20, 11, 30, 15, tzinfo=BERLIN)
TITLE = "Post-mortem review: INC-4711 Zahlungsdienst überlastet — checkout errors for all EU customers 🚨"


def agenda_text(meeting: Meeting) -> str:
    return "\n".join(f"{n}. {item.title} ({item.minutes} min)" for n, item in enumerate(meeting.agenda, 1))


def make_meeting(start: datetime, *, minutes: int = 60, zone: str = "Europe/Berlin", **changes: object) -> Meeting:
    fields: dict[str, object] = dict(
        postmortem_id="pm-4711",
        uid="pm-4711@postmortem.example.com",
        sequence=3,
        title=TITLE,
        start=start,
        end=start + timedelta(minutes=minutes),
        timezone=zone,
        organizer=Attendee(email="ingrid@example.com", name="Ingrid Commander, SRE"),
        attendees=[
            Attendee(email="bob@example.com", name="Bob Müller"),
            Attendee(email="carol@example.com", name='Carol "CJ" Jones'),
            Attendee(email="dave@example.com", required=False),
            Attendee(email="BOB@example.com", name="Bob again"),  # the same person twice: one ATTENDEE
        ],
        agenda=[
            AgendaItem(title="Timeline walk-through", minutes=15),
            AgendaItem(title="Contributing factors", minutes=25),
            AgendaItem(title="Action items; owners, due dates", minutes=20),
        ],
        report_url="https://postmortems.example.com/api/postmortems/pm-4711?format=markdown",
        video_url="https://meet.example.com/pm-4711-review-with-a-rather-long-room-name-that-needs-folding",
    )
    fields.update(changes)
    return Meeting(**fields)


def invite(meeting: Meeting, method: str = "REQUEST") -> bytes:
    description = f"Agenda:\n{agenda_text(meeting)}\n\nDraft report: {meeting.report_url}"
    return build_invite(meeting, method=method, now=NOW, description=description)  # type: ignore[arg-type]


def event_of(ics: bytes):
    calendar = Calendar.from_ical(ics)
    [event] = calendar.walk("VEVENT")
    return calendar, event


def raw_lines(ics: bytes, name: str) -> list[str]:
    """Unfolded content lines starting with `name` (as a client reads them)."""
    text = ics.decode("utf-8").replace("\r\n ", "")
    return [line for line in text.split("\r\n") if line.split(";", 1)[0].split(":", 1)[0] == name]


# Around the 2026 changes in Berlin: 29 March 02:00 CET -> 03:00 CEST, 25 October 03:00 CEST -> 02:00 CET.
WALL_TIMES = [
    (datetime(2026, 3, 28, 9, 0, tzinfo=UTC), "20260328T100000", "20260328T110000"),  # CET, day before
    (datetime(2026, 3, 29, 8, 0, tzinfo=UTC), "20260329T100000", "20260329T110000"),  # CEST, change day
    (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "20260329T013000", "20260329T033000"),  # spans the change
    (datetime(2026, 10, 25, 8, 0, tzinfo=UTC), "20261025T090000", "20261025T100000"),  # CET again
]


@pytest.mark.parametrize(("start", "wall_start", "wall_end"), WALL_TIMES)
def test_request_times_are_berlin_wall_time_with_tzid(start: datetime, wall_start: str, wall_end: str) -> None:
    meeting = make_meeting(start)
    ics = invite(meeting)
    calendar, event = event_of(ics)

    assert raw_lines(ics, "DTSTART")[-1] == f"DTSTART;TZID=Europe/Berlin:{wall_start}"
    assert raw_lines(ics, "DTEND")[-1] == f"DTEND;TZID=Europe/Berlin:{wall_end}"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("DTSTART") == meeting.start
    assert event.decoded("DTEND") == meeting.end
    [zone] = calendar.walk("VTIMEZONE")
    assert zone["TZID"] == "Europe/Berlin"

    # vobject resolves TZID through the VTIMEZONE in the object, so this checks the VTIMEZONE too
    parsed = vobject.readOne(ics.decode("utf-8"))
    assert parsed.vevent.dtstart.value == meeting.start
    assert parsed.vevent.dtstart.value.utcoffset() == meeting.start.astimezone(BERLIN).utcoffset()
    assert parsed.vevent.dtend.value == meeting.end


def test_request_has_every_property_a_client_needs() -> None:
    meeting = make_meeting(datetime(2026, 3, 30, 8, 0, tzinfo=UTC))
    ics = invite(meeting)
    calendar, event = event_of(ics)

    assert calendar["PRODID"] == PRODID
    assert calendar["VERSION"] == "2.0"
    assert calendar["METHOD"] == "REQUEST"
    assert event["UID"] == meeting.uid
    assert event["SEQUENCE"] == 3
    assert raw_lines(ics, "DTSTAMP") == ["DTSTAMP:20260320T103015Z"]  # `now` in UTC
    assert event["SUMMARY"] == TITLE
    assert event["STATUS"] == "CONFIRMED"
    assert str(event["URL"]) == meeting.report_url
    assert "Timeline walk-through (15 min)" in event["DESCRIPTION"]
    assert "Action items; owners, due dates (20 min)" in event["DESCRIPTION"]
    assert meeting.report_url in event["DESCRIPTION"]
    assert event["LOCATION"] == meeting.video_url
    assert str(event["CONFERENCE"]) == meeting.video_url

    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:ingrid@example.com"
    assert organizer.params["CN"] == "Ingrid Commander, SRE"

    attendees = {str(a): a.params for a in event["ATTENDEE"]}
    assert list(attendees) == ["mailto:bob@example.com", "mailto:carol@example.com", "mailto:dave@example.com"]
    for params in attendees.values():
        assert params["RSVP"] == "TRUE"
        assert params["PARTSTAT"] == "NEEDS-ACTION"
        assert params["CUTYPE"] == "INDIVIDUAL"
    assert attendees["mailto:bob@example.com"]["CN"] == "Bob Müller"
    assert attendees["mailto:carol@example.com"]["CN"] == 'Carol "CJ" Jones'
    assert attendees["mailto:carol@example.com"]["ROLE"] == "REQ-PARTICIPANT"
    assert attendees["mailto:dave@example.com"]["ROLE"] == "OPT-PARTICIPANT"

    [alarm] = event.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY"
    assert alarm.decoded("TRIGGER") == timedelta(minutes=-15)
    assert raw_lines(ics, "TRIGGER") == ["TRIGGER:-PT15M"]
    assert alarm["DESCRIPTION"]

    parsed = vobject.readOne(ics.decode("utf-8"))  # the second parser agrees
    assert parsed.method.value == "REQUEST"
    assert parsed.vevent.uid.value == meeting.uid
    assert parsed.vevent.summary.value == TITLE
    assert parsed.vevent.location.value == meeting.video_url
    assert [a.value for a in parsed.vevent.attendee_list] == list(attendees)
    assert parsed.vevent.valarm.trigger.value == timedelta(minutes=-15)


def test_organizer_listed_as_attendee_has_accepted() -> None:
    meeting = make_meeting(
        datetime(2026, 3, 30, 8, 0, tzinfo=UTC),
        attendees=[Attendee(email="Ingrid@example.com"), Attendee(email="bob@example.com")],
    )
    _, event = event_of(invite(meeting))
    attendees = {str(a): a.params for a in event["ATTENDEE"]}
    assert attendees["mailto:Ingrid@example.com"]["PARTSTAT"] == "ACCEPTED"
    assert attendees["mailto:Ingrid@example.com"]["CN"] == "Ingrid Commander, SRE"
    assert attendees["mailto:bob@example.com"]["PARTSTAT"] == "NEEDS-ACTION"


def test_cancel_keeps_uid_and_says_cancelled_without_alarm() -> None:
    meeting = make_meeting(datetime(2026, 3, 30, 8, 0, tzinfo=UTC), sequence=4)
    ics = invite(meeting, "CANCEL")
    calendar, event = event_of(ics)
    assert calendar["METHOD"] == "CANCEL"
    assert event["UID"] == meeting.uid
    assert event["SEQUENCE"] == 4
    assert event["STATUS"] == "CANCELLED"
    assert len(event["ATTENDEE"]) == 3
    assert str(event["ORGANIZER"]) == "mailto:ingrid@example.com"
    assert event.walk("VALARM") == []  # RFC 5546 §3.2.5: no VALARM in a CANCEL
    parsed = vobject.readOne(ics.decode("utf-8"))
    assert parsed.method.value == "CANCEL"
    assert parsed.vevent.status.value == "CANCELLED"


def test_no_video_link_means_no_location() -> None:
    ics = invite(make_meeting(datetime(2026, 3, 30, 8, 0, tzinfo=UTC), video_url=None))
    _, event = event_of(ics)
    assert "LOCATION" not in event
    assert "CONFERENCE" not in event


def test_utc_meeting_is_written_in_utc_without_vtimezone() -> None:
    meeting = make_meeting(datetime(2026, 3, 30, 8, 0, tzinfo=UTC), zone="UTC")
    ics = invite(meeting)
    calendar, event = event_of(ics)
    assert raw_lines(ics, "DTSTART") == ["DTSTART:20260330T080000Z"]
    assert calendar.walk("VTIMEZONE") == []
    assert event.decoded("DTSTART") == meeting.start


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_crlf_lines_folded_at_75_octets_without_splitting_characters(method: str) -> None:
    meeting = make_meeting(datetime(2026, 3, 30, 8, 0, tzinfo=UTC))
    ics = invite(meeting, method)
    assert ics.endswith(b"\r\n")
    assert ics.count(b"\n") == ics.count(b"\r\n")  # no bare LF
    lines = ics.split(b"\r\n")[:-1]
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines)  # something was long enough to be folded
    for line in lines:
        line.decode("utf-8")  # folding never cuts a multi-byte character in two
    _, event = event_of(ics)
    assert event["SUMMARY"] == TITLE  # and unfolding gives the text back


def moments_to_check(zone: ZoneInfo) -> list[datetime]:
    """Twice a day for two years, and on both sides of every change of offset in that time."""
    first = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=14)  # New Year's Day in Kiritimati
    moments = [first + timedelta(hours=12 * n, minutes=15) for n in range(2 * 730)]
    hour = first
    while hour < datetime(2028, 1, 1, tzinfo=UTC):
        following = hour + timedelta(hours=1)
        if hour.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            change = following
            while (change - timedelta(minutes=1)).astimezone(zone).utcoffset() == following.astimezone(
                zone
            ).utcoffset():
                change -= timedelta(minutes=1)
            moments += [change + timedelta(minutes=m) for m in (-61, -31, -1, 0, 1, 29, 59, 61)]
        hour = following
    return moments


@pytest.mark.parametrize(
    "tzid",
    [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Sao_Paulo",
        "Pacific/Chatham",
    ],
)
def test_vtimezone_matches_the_tz_database_at_every_moment(tzid: str) -> None:
    """Read only through the VTIMEZONE (not the tz database), every moment checked gets the right offset."""
    start = datetime(2026, 6, 1, tzinfo=UTC)
    component = vtimezone(tzid, start, start + timedelta(hours=1))
    text = component.to_ical().decode("utf-8")
    from_vtimezone = dateutil.tz.tzical(io.StringIO(text)).get()
    component["TZID"] = f"Custom/{tzid}"  # so icalendar cannot fall back to its own tz database
    from_icalendar = component.to_tz(lookup_tzid=False)
    zone = ZoneInfo(tzid)
    for moment in moments_to_check(zone):
        expected = moment.astimezone(zone).utcoffset()
        assert moment.astimezone(from_vtimezone).utcoffset() == expected, moment
        assert moment.astimezone(from_icalendar).utcoffset() == expected, moment


def onsets(observance) -> list[datetime]:
    rdates = observance.get("RDATE") or []
    rdates = rdates if isinstance(rdates, list) else [rdates]
    return [observance.decoded("DTSTART"), *(value.dt for rdate in rdates for value in rdate.dts)]


def test_spring_onset_is_written_in_the_offset_before_it() -> None:
    """RFC 5545 §3.6.5: Berlin's DAYLIGHT starts at 02:00 local (CET), not 03:00; STANDARD at 03:00 (CEST)."""
    component = vtimezone("Europe/Berlin", datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 1, 1, tzinfo=UTC))
    [daylight] = component.walk("DAYLIGHT")
    assert datetime(2026, 3, 29, 2, 0) in onsets(daylight)
    assert daylight.decoded("TZOFFSETFROM") == timedelta(hours=1)
    assert daylight.decoded("TZOFFSETTO") == timedelta(hours=2)
    [autumn] = [s for s in component.walk("STANDARD") if s.decoded("TZOFFSETFROM") == timedelta(hours=2)]
    assert datetime(2026, 10, 25, 3, 0) in onsets(autumn)


def test_unsupported_method_is_refused() -> None:
    with pytest.raises(ValueError):
        build_invite(
            make_meeting(datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),
            method="PUBLISH",  # type: ignore[arg-type]
            now=NOW,
            description="",
        )
