"""CalDavCalendar against a real Radicale: one resource per meeting, updated in place, and busy time."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from icalendar import Calendar, vCalAddress
from starlette.requests import Request
from starlette.responses import Response

from postmortem.integrations.caldav_busy import busy_from_events, busy_from_freebusy
from postmortem.integrations.caldav_calendar import CalDavCalendar
from postmortem.integrations.http_errors import UpstreamError
from postmortem.meeting.invite import build_invite
from postmortem.meeting.models import AgendaItem, Attendee, Meeting
from tests.fakes.radicale_server import radicale_calendar, radicale_server
from tests.fakes.serve import loopback_client, serve_app
from tests.support import free_port

UTC = UTC
NOW = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)
CREDENTIALS = ("alice", "s3cret-pass")


@pytest_asyncio.fixture(scope="module")
async def radicale() -> AsyncIterator[str]:
    async with radicale_calendar() as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def radicale_with_auth() -> AsyncIterator[str]:
    async with radicale_calendar(credentials=CREDENTIALS) as url:
        yield url


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with loopback_client() as client:
        yield client


def meeting(uid: str, start: datetime, sequence: int = 0, minutes: int = 60) -> Meeting:
    return Meeting(
        postmortem_id="pm-1",
        uid=uid,
        sequence=sequence,
        title="Post-mortem review: INC-1",
        start=start,
        end=start + timedelta(minutes=minutes),
        timezone="Europe/Berlin",
        organizer=Attendee(email="ingrid@example.com", name="Ingrid"),
        attendees=[Attendee(email="bob@example.com"), Attendee(email="carol@example.com", required=False)],
        agenda=[AgendaItem(title="Timeline", minutes=minutes)],
        report_url="https://postmortems.example.com/pm-1",
    )


def request_ics(m: Meeting) -> bytes:
    return build_invite(m, method="REQUEST", now=NOW, description="Agenda: Timeline")


async def resource_hrefs(http: httpx.AsyncClient, url: str, auth: httpx.Auth | None = None) -> list[str]:
    """The calendar object resources in the collection (PROPFIND Depth: 1)."""
    body = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'
    response = await http.request(
        "PROPFIND", url, content=body, headers={"Depth": "1"}, auth=auth if auth else httpx.USE_CLIENT_DEFAULT
    )
    assert response.status_code == 207
    hrefs = [element.text or "" for element in ET.fromstring(response.content).iter("{DAV:}href")]
    return sorted(href for href in hrefs if href.endswith(".ics"))


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        ("pagerduty-PCPZE64@postmortem", "pagerduty-PCPZE64%40postmortem.ics"),
        # a "/" would be decoded by the server (Radicale answers 401 for the path it makes of it)
        ("opsgenie-a/b c@postmortem", "uid-4748ae5014396158a7a419c2b162cfe491816894.ics"),
    ],
)
async def test_event_is_created_updated_in_place_and_deleted(
    radicale: str, http: httpx.AsyncClient, uid: str, name: str
) -> None:
    calendar = CalDavCalendar(radicale, None, None, http)
    assert calendar.event_url(uid) == f"{radicale}{name}"
    first = meeting(uid, datetime(2026, 4, 6, 8, 0, tzinfo=UTC))

    etag = await calendar.put_event(uid, request_ics(first))
    assert etag
    stored = await calendar.get_event(uid)
    assert stored is not None
    [event] = Calendar.from_ical(stored).walk("VEVENT")
    assert event["UID"] == uid
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == first.start
    assert "METHOD" not in Calendar.from_ical(stored)  # RFC 4791 §4.1: none in a stored object
    assert {a.params["SCHEDULE-AGENT"] for a in cast("list[vCalAddress]", event["ATTENDEE"])} == {"CLIENT"}
    path = urlsplit(radicale).path
    assert await resource_hrefs(http, radicale) == [f"{path}{name}"]

    moved = meeting(uid, datetime(2026, 4, 7, 13, 30, tzinfo=UTC), sequence=1)
    second_etag = await calendar.put_event(uid, request_ics(moved))
    assert second_etag and second_etag != etag
    [event] = Calendar.from_ical(await calendar.get_event(uid) or b"").walk("VEVENT")
    assert event["SEQUENCE"] == 1
    assert event.decoded("DTSTART") == moved.start
    assert event.decoded("DTEND") == moved.end
    assert await resource_hrefs(http, radicale) == [f"{path}{name}"]  # the same one resource

    await calendar.delete_event(uid)
    assert await calendar.get_event(uid) is None
    assert await resource_hrefs(http, radicale) == []
    await calendar.delete_event(uid)  # already gone: fine


def vcalendar(*events: str) -> bytes:
    body = "".join(f"BEGIN:VEVENT\r\n{event.strip()}\r\nEND:VEVENT\r\n" for event in events)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//busy//EN\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
        "BEGIN:DAYLIGHT\r\nDTSTART:19810329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
        "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nEND:DAYLIGHT\r\n"
        "BEGIN:STANDARD\r\nDTSTART:19961027T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
        "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        f"{body}END:VCALENDAR\r\n"
    ).encode()


def stamp(uid: str) -> str:
    return f"UID:{uid}\r\nDTSTAMP:20260101T000000Z"


# A week in 2027 across Berlin's change to summer time (Sunday 28 March 2027).
WINDOW = (datetime(2027, 3, 22, 0, 0, tzinfo=UTC), datetime(2027, 3, 31, 0, 0, tzinfo=UTC))
BUSY_EVENTS = {
    "review": f"{stamp('review')}\r\nSUMMARY:review\r\nDTSTART:20270323T090000Z\r\nDTEND:20270323T100000Z",
    "lunch": f"{stamp('lunch')}\r\nSUMMARY:lunch (free)\r\nTRANSP:TRANSPARENT\r\nDTSTART:20270323T110000Z\r\nDTEND:20270323T120000Z",
    "dropped": f"{stamp('dropped')}\r\nSUMMARY:cancelled\r\nSTATUS:CANCELLED\r\nDTSTART:20270324T090000Z\r\nDTEND:20270324T100000Z",
    "maybe": f"{stamp('maybe')}\r\nSUMMARY:tentative\r\nSTATUS:TENTATIVE\r\nDTSTART:20270324T140000Z\r\nDURATION:PT30M",
    # daily 09:30 Berlin wall time, Thursday to Monday, but not Saturday: CET before the 28th, CEST after
    "standup": (
        f"{stamp('standup')}\r\nSUMMARY:standup\r\nDTSTART;TZID=Europe/Berlin:20270325T093000\r\n"
        "DTEND;TZID=Europe/Berlin:20270325T094500\r\nRRULE:FREQ=DAILY;COUNT=5\r\n"
        "EXDATE;TZID=Europe/Berlin:20270327T093000"
    ),
    "early": f"{stamp('early')}\r\nSUMMARY:straddles the window start\r\nDTSTART:20270321T230000Z\r\nDTEND:20270322T010000Z",
    "later": f"{stamp('later')}\r\nSUMMARY:outside\r\nDTSTART:20270402T090000Z\r\nDTEND:20270402T100000Z",
}
EXPECTED_BUSY = [
    (datetime(2027, 3, 22, 0, 0, tzinfo=UTC), datetime(2027, 3, 22, 1, 0, tzinfo=UTC)),  # clipped to the window
    (datetime(2027, 3, 23, 9, 0, tzinfo=UTC), datetime(2027, 3, 23, 10, 0, tzinfo=UTC)),
    (datetime(2027, 3, 24, 14, 0, tzinfo=UTC), datetime(2027, 3, 24, 14, 30, tzinfo=UTC)),
    (datetime(2027, 3, 25, 8, 30, tzinfo=UTC), datetime(2027, 3, 25, 8, 45, tzinfo=UTC)),  # CET
    (datetime(2027, 3, 26, 8, 30, tzinfo=UTC), datetime(2027, 3, 26, 8, 45, tzinfo=UTC)),
    (datetime(2027, 3, 28, 7, 30, tzinfo=UTC), datetime(2027, 3, 28, 7, 45, tzinfo=UTC)),  # CEST
    (datetime(2027, 3, 29, 7, 30, tzinfo=UTC), datetime(2027, 3, 29, 7, 45, tzinfo=UTC)),
]


@pytest_asyncio.fixture(scope="module")
async def busy_calendar(radicale: str) -> AsyncIterator[str]:
    async with loopback_client() as http:
        calendar = CalDavCalendar(radicale, None, None, http)
        for uid, event in BUSY_EVENTS.items():
            await calendar.put_event(uid, vcalendar(event))
        yield radicale
        for uid in BUSY_EVENTS:
            await calendar.delete_event(uid)


@pytest.mark.parametrize("free_busy_query", [True, False], ids=["free-busy-query", "calendar-query"])
async def test_busy_times(busy_calendar: str, http: httpx.AsyncClient, free_busy_query: bool) -> None:
    calendar = CalDavCalendar(busy_calendar, None, None, http, free_busy_query=free_busy_query)
    busy = await calendar.busy_times(*WINDOW)
    assert busy == EXPECTED_BUSY
    assert all(start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0) for start, end in busy)


async def test_busy_times_of_an_invite_in_a_non_utc_zone(radicale: str, http: httpx.AsyncClient) -> None:
    m = meeting("pm-busy@postmortem", datetime(2027, 5, 3, 8, 0, tzinfo=UTC), minutes=90)
    calendar = CalDavCalendar(radicale, None, None, http)
    await calendar.put_event(m.uid, request_ics(m))
    try:
        window = (datetime(2027, 5, 3, tzinfo=UTC), datetime(2027, 5, 4, tzinfo=UTC))
        assert await calendar.busy_times(*window) == [(m.start, m.end)]
        fallback = CalDavCalendar(radicale, None, None, http, free_busy_query=False)
        assert await fallback.busy_times(*window) == [(m.start, m.end)]
        assert await calendar.busy_times(datetime(2027, 5, 4, tzinfo=UTC), datetime(2027, 5, 5, tzinfo=UTC)) == []
    finally:
        await calendar.delete_event(m.uid)


@contextlib.asynccontextmanager
async def proxy_answering_free_busy_with(
    answer: Response, upstream_url: str, http: httpx.AsyncClient
) -> AsyncIterator[tuple[str, list[str]]]:
    """Radicale behind a proxy that gives `answer` to free-busy-query, as servers without it do."""
    upstream = urlsplit(upstream_url)
    seen: list[str] = []

    async def app(scope, receive, send):
        request = Request(scope, receive)
        body = await request.body()
        kind = (
            "free-busy-query" if b"free-busy-query" in body else "calendar-query" if b"calendar-query" in body else ""
        )
        seen.append(f"{request.method} {kind}".strip())
        if kind == "free-busy-query":
            response = answer
        else:
            relayed = await http.request(
                request.method,
                f"{upstream.scheme}://{upstream.netloc}{request.url.path}",
                content=body,
                headers={k: v for k, v in request.headers.items() if k in ("depth", "content-type", "authorization")},
            )
            response = Response(
                relayed.content,
                status_code=relayed.status_code,
                headers={k: v for k, v in relayed.headers.items() if k in ("content-type", "etag")},
            )
        await response(scope, receive, send)

    async with serve_app(app) as base:
        yield f"{base}{upstream.path}", seen


MULTISTATUS = (  # what Radicale 3.0 answered to free-busy-query: the matching events, no VFREEBUSY
    b'<?xml version="1.0"?><multistatus xmlns="DAV:"><response><href>/alice/team/review.ics</href></response>'
    b"</multistatus>"
)


@pytest.mark.parametrize(
    "answer",
    [
        Response(status_code=501),
        Response(
            b'<?xml version="1.0"?><error xmlns="DAV:"><supported-report/></error>',
            status_code=403,
            media_type="application/xml",
        ),
        Response(MULTISTATUS, status_code=207, media_type="application/xml"),
    ],
    ids=["501", "403", "207-multistatus"],
)
async def test_server_without_free_busy_query_is_asked_with_calendar_query(
    busy_calendar: str, http: httpx.AsyncClient, answer: Response
) -> None:
    async with proxy_answering_free_busy_with(answer, busy_calendar, http) as (url, seen):
        busy = await CalDavCalendar(url, None, None, http).busy_times(*WINDOW)
    assert busy == EXPECTED_BUSY
    assert seen == ["REPORT free-busy-query", "REPORT calendar-query"]


async def test_basic_auth(radicale_with_auth: str, http: httpx.AsyncClient) -> None:
    calendar = CalDavCalendar(radicale_with_auth, *CREDENTIALS, http)
    m = meeting("pm-auth@postmortem", datetime(2026, 4, 6, 8, 0, tzinfo=UTC))
    assert await calendar.put_event(m.uid, request_ics(m))
    assert await calendar.get_event(m.uid)
    assert await calendar.busy_times(datetime(2026, 4, 6, tzinfo=UTC), datetime(2026, 4, 7, tzinfo=UTC)) == [
        (m.start, m.end)
    ]

    for wrong in (
        CalDavCalendar(radicale_with_auth, "alice", "wrong", http),
        CalDavCalendar(radicale_with_auth, None, None, http),
    ):
        with pytest.raises(UpstreamError) as caught:
            await wrong.get_event(m.uid)
        assert caught.value.status == 401
        assert caught.value.permanent is True
    await calendar.delete_event(m.uid)


async def test_wrong_url_is_permanent(radicale: str, http: httpx.AsyncClient) -> None:
    base = radicale.split("/alice/")[0]
    missing = CalDavCalendar(f"{base}/nobody/nothing/", None, None, http)
    m = meeting("pm-lost@postmortem", datetime(2026, 4, 6, 8, 0, tzinfo=UTC))
    with pytest.raises(UpstreamError) as caught:
        await missing.put_event(m.uid, request_ics(m))
    assert caught.value.permanent is True
    assert caught.value.service == "CalDAV"
    assert caught.value.status == 409  # Radicale: the collection to put it in does not exist
    with pytest.raises(UpstreamError) as caught:
        await missing.busy_times(datetime(2026, 4, 6, tzinfo=UTC), datetime(2026, 4, 7, tzinfo=UTC))
    assert caught.value.permanent is True
    assert caught.value.status == 404


async def test_unreachable_server_is_transient(http: httpx.AsyncClient) -> None:
    calendar = CalDavCalendar(f"http://127.0.0.1:{free_port()}/alice/team/", None, None, http)
    with pytest.raises(UpstreamError) as caught:
        await calendar.get_event("x")
    assert caught.value.permanent is False
    assert caught.value.status is None


async def test_uid_must_match_the_object(radicale: str, http: httpx.AsyncClient) -> None:
    calendar = CalDavCalendar(radicale, None, None, http)
    m = meeting("pm-a@postmortem", datetime(2026, 4, 6, 8, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="UID"):
        await calendar.put_event("pm-b@postmortem", request_ics(m))
    with pytest.raises(ValueError):
        await calendar.put_event("..", request_ics(m))


def test_freebusy_periods_in_both_forms() -> None:
    answer = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VFREEBUSY\r\n"
        b"DTSTART:20270322T000000Z\r\nDTEND:20270329T000000Z\r\n"
        b"FREEBUSY;FBTYPE=BUSY:20270323T090000Z/20270323T100000Z\r\n"
        b"FREEBUSY:20270323T093000Z/PT1H,20270324T120000Z/PT15M\r\n"
        b"FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20270325T080000Z/20270325T090000Z\r\n"
        b"FREEBUSY;FBTYPE=FREE:20270326T080000Z/PT8H\r\n"
        b"FREEBUSY;FBTYPE=BUSY:20270321T220000Z/PT4H\r\n"
        b"END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
    )
    assert busy_from_freebusy(answer, datetime(2027, 3, 22, tzinfo=UTC), datetime(2027, 3, 29, tzinfo=UTC)) == [
        (datetime(2027, 3, 22, 0, 0, tzinfo=UTC), datetime(2027, 3, 22, 2, 0, tzinfo=UTC)),
        # overlapping periods come back as they are: the scheduler joins busy time
        (datetime(2027, 3, 23, 9, 0, tzinfo=UTC), datetime(2027, 3, 23, 10, 0, tzinfo=UTC)),
        (datetime(2027, 3, 23, 9, 30, tzinfo=UTC), datetime(2027, 3, 23, 10, 30, tzinfo=UTC)),
        (datetime(2027, 3, 24, 12, 0, tzinfo=UTC), datetime(2027, 3, 24, 12, 15, tzinfo=UTC)),
        (datetime(2027, 3, 25, 8, 0, tzinfo=UTC), datetime(2027, 3, 25, 9, 0, tzinfo=UTC)),
    ]


def test_recurrences_left_unexpanded_by_a_server_are_expanded_here() -> None:
    """What a server that ignores C:expand returns: the master with RRULE, EXDATE and a moved instance."""
    calendar = vcalendar(
        BUSY_EVENTS["standup"],
        f"{stamp('standup')}\r\nRECURRENCE-ID;TZID=Europe/Berlin:20270326T093000\r\n"
        "DTSTART;TZID=Europe/Berlin:20270326T150000\r\nDTEND;TZID=Europe/Berlin:20270326T151500",
    )
    busy = busy_from_events(calendar, *WINDOW)
    assert sorted(busy) == [
        (datetime(2027, 3, 25, 8, 30, tzinfo=UTC), datetime(2027, 3, 25, 8, 45, tzinfo=UTC)),
        (datetime(2027, 3, 26, 14, 0, tzinfo=UTC), datetime(2027, 3, 26, 14, 15, tzinfo=UTC)),  # moved instance
        (datetime(2027, 3, 28, 7, 30, tzinfo=UTC), datetime(2027, 3, 28, 7, 45, tzinfo=UTC)),
        (datetime(2027, 3, 29, 7, 30, tzinfo=UTC), datetime(2027, 3, 29, 7, 45, tzinfo=UTC)),
    ]


async def test_calendar_refusing_writes_with_403_is_permanent_in_radicales_words_then_heals(
    http: httpx.AsyncClient,
) -> None:
    async with radicale_server(credentials=CREDENTIALS) as radicale:
        calendar = CalDavCalendar(radicale.url, *CREDENTIALS, http)
        kept = meeting("pm-kept@postmortem", datetime(2026, 4, 6, 8, 0, tzinfo=UTC))
        await calendar.put_event(kept.uid, request_ics(kept))
        m = meeting("pm-403@postmortem", datetime(2026, 4, 6, 10, 0, tzinfo=UTC))

        radicale.fail_with(403)  # the account may read the calendar, no longer write it
        for refused in (calendar.put_event(m.uid, request_ics(m)), calendar.delete_event(kept.uid)):
            with pytest.raises(UpstreamError) as caught:
                await refused
            error = caught.value
            assert (error.service, error.status, error.permanent) == ("CalDAV", 403, True)
            assert "answered 403 Forbidden: Access to the requested resource forbidden." in str(error)
        assert await calendar.get_event(m.uid) is None  # reads still answer; nothing was stored
        day = (datetime(2026, 4, 6, tzinfo=UTC), datetime(2026, 4, 7, tzinfo=UTC))
        assert await calendar.busy_times(*day) == [(kept.start, kept.end)]

        radicale.heal()
        assert await calendar.put_event(m.uid, request_ics(m))
        assert await calendar.busy_times(*day) == [(kept.start, kept.end), (m.start, m.end)]
        with pytest.raises(ValueError, match="403 only"):
            radicale.fail_with(500)
