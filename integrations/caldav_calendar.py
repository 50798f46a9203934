"""A CalDAV calendar collection (RFC 4791), spoken over httpx: one event per post-mortem, and busy time.

Every revision of a meeting is PUT to the same resource, `<collection>/<uid>.ics` (see
`resource_name` for UIDs that are not plain), so the calendar holds one event that moves, never a
trail of copies. Requests go only to the configured collection URL and to event resources
directly under it.

Before storing, an iTIP object is made a plain calendar object resource:

* METHOD is removed: RFC 4791 §4.1 forbids it in a calendar collection (strict servers answer 403).
* Each ATTENDEE gets SCHEDULE-AGENT=CLIENT (RFC 6638 §7.1): the invitations go out by email from
  this service, so a scheduling server (Nextcloud, iCloud, ...) must not send its own on top.

Busy time comes from a `free-busy-query` REPORT (§7.10), where the server expands recurrences and
applies TRANSP/STATUS itself. A server that refuses it (403, 501) or answers it with something
other than a VFREEBUSY (old Radicale: a multistatus) is asked with a `calendar-query` REPORT
(§7.8) for the events in the window instead, expanded by the server (`C:expand`, and here for
servers that ignore it). Reading busy time out of either answer is `caldav_busy.py`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import httpx
from icalendar import Calendar

from postmortem.integrations.caldav_busy import Interval, busy_from_events, busy_from_freebusy
from postmortem.integrations.http_errors import UpstreamError, path_segment, request

SERVICE = "CalDAV"
DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
# A REPORT the server does not do: 403 with DAV:supported-report (RFC 4791 §7.10), or 501.
FREE_BUSY_REFUSED = frozenset({403, 501})
_PLAIN_UID = re.compile(r"[A-Za-z0-9@._~+=-]{1,200}")

log = logging.getLogger(__name__)


class CalDavCalendar:
    def __init__(
        self,
        url: str,
        username: str | None,
        password: str | None,
        http: httpx.AsyncClient,
        *,
        free_busy_query: bool = True,
    ) -> None:
        """`url` is the calendar collection; `free_busy_query=False` goes straight to calendar-query."""
        self.url = url if url.endswith("/") else url + "/"
        self._http = http
        self._auth = httpx.BasicAuth(username, password or "") if username else None
        self._free_busy_query = free_busy_query

    def event_url(self, uid: str) -> str:
        return f"{self.url}{resource_name(uid)}.ics"

    async def put_event(self, uid: str, ics: bytes) -> str | None:
        """Create or overwrite the event `uid`; the new ETag when the server gives one."""
        body = calendar_resource(uid, ics)
        response = await self._request(
            "PUT", self.event_url(uid), content=body, headers={"Content-Type": "text/calendar; charset=utf-8"}
        )
        return response.headers.get("etag")

    async def get_event(self, uid: str) -> bytes | None:
        """The stored event, or None when there is none."""
        try:
            response = await self._request("GET", self.event_url(uid), headers={"Accept": "text/calendar"})
        except UpstreamError as exc:
            if exc.status in (404, 410):
                return None
            raise
        return response.content

    async def delete_event(self, uid: str) -> None:
        """Remove the event; one that is already gone is fine."""
        try:
            await self._request("DELETE", self.event_url(uid))
        except UpstreamError as exc:
            if exc.status not in (404, 410):
                raise

    async def busy_times(self, start: datetime, end: datetime) -> list[Interval]:
        """Busy intervals overlapping [start, end), in UTC, clipped to the window and sorted.

        Overlapping intervals are not joined here: the scheduler merges busy time (`find_slot`).
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if end <= start:
            return []
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if self._free_busy_query:
            try:
                busy = await self._free_busy(start, end)
            except UpstreamError as exc:
                if exc.status not in FREE_BUSY_REFUSED:
                    raise
                log.info("CalDAV %s refused free-busy-query (%s); asking with calendar-query", self.url, exc.status)
            else:
                if busy is not None:
                    return busy
        return await self._calendar_query_busy(start, end)

    async def _free_busy(self, start: datetime, end: datetime) -> list[Interval] | None:
        """Busy time from a free-busy-query REPORT; None when the answer is not a VFREEBUSY at all."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<C:free-busy-query xmlns:C="{CALDAV}">'
            f'<C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/>'
            "</C:free-busy-query>"
        )
        response = await self._report(body)
        if response.status_code == 207 or not response.content.lstrip().startswith(b"BEGIN:VCALENDAR"):
            # Radicale before free-busy support answered with a multistatus of event hrefs
            log.info("CalDAV %s answered free-busy-query without a VFREEBUSY; asking with calendar-query", self.url)
            return None
        try:
            return busy_from_freebusy(response.content, start, end)
        except ValueError as exc:
            raise UpstreamError(
                SERVICE,
                response.status_code,
                f"CalDAV answered free-busy-query with no readable VFREEBUSY: {exc}",
                permanent=True,
            ) from exc

    async def _calendar_query_busy(self, start: datetime, end: datetime) -> list[Interval]:
        window = f'start="{_stamp(start)}" end="{_stamp(end)}"'
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<C:calendar-query xmlns:D="{DAV}" xmlns:C="{CALDAV}">'
            f"<D:prop><C:calendar-data><C:expand {window}/></C:calendar-data></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f"<C:time-range {window}/>"
            "</C:comp-filter></C:comp-filter></C:filter>"
            "</C:calendar-query>"
        )
        response = await self._report(body)
        try:
            documents = calendar_data(response.content)
            intervals = [interval for document in documents for interval in busy_from_events(document, start, end)]
        except ValueError as exc:
            raise UpstreamError(
                SERVICE,
                response.status_code,
                f"CalDAV answered calendar-query with an unreadable body: {exc}",
                permanent=True,
            ) from exc
        return sorted(intervals)

    async def _report(self, body: str) -> httpx.Response:
        return await self._request(
            "REPORT",
            self.url,
            content=body.encode("utf-8"),
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
        )

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self._auth is not None:
            kwargs["auth"] = self._auth
        return await request(self._http, SERVICE, method, url, **kwargs)


def resource_name(uid: str) -> str:
    """The event's resource name: the UID itself when it is plain, else a digest of it.

    A UID may hold anything; a "/" (even escaped as %2F) or a "%" in a path is decoded or refused
    by many servers and proxies, so such UIDs get a stable name that only uses safe characters.
    """
    if not uid:
        raise ValueError("an event needs a UID")
    if uid in (".", "..") or not _PLAIN_UID.fullmatch(uid):
        return "uid-" + hashlib.sha256(uid.encode("utf-8")).hexdigest()[:40]
    return path_segment(uid)


def calendar_resource(uid: str, ics: bytes) -> bytes:
    """`ics` as a calendar object resource: no METHOD, the client does the scheduling, one UID."""
    try:
        calendar = Calendar.from_ical(ics)
    except ValueError as exc:
        raise ValueError(f"not an iCalendar object: {exc}") from exc
    components = [c for c in calendar.subcomponents if c.name in ("VEVENT", "VTODO", "VJOURNAL")]
    if not components:
        raise ValueError("the calendar object has no VEVENT")
    for component in components:
        if str(component.get("UID", "")) != uid:
            raise ValueError(f"the calendar object's UID {component.get('UID')!r} is not {uid!r}")
        attendees = component.get("ATTENDEE")
        for attendee in attendees if isinstance(attendees, list) else [attendees] if attendees else []:
            attendee.params["SCHEDULE-AGENT"] = "CLIENT"
    calendar.pop("METHOD", None)
    return calendar.to_ical()


def calendar_data(multistatus: bytes) -> list[bytes]:
    """The C:calendar-data of every resource found in a 207 multistatus body."""
    try:
        root = ET.fromstring(multistatus)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from exc
    documents: list[bytes] = []
    for response in root.iter(f"{{{DAV}}}response"):
        for propstat in response.iter(f"{{{DAV}}}propstat"):
            status = propstat.findtext(f"{{{DAV}}}status", default="")
            if " 200 " not in f"{status} ":
                continue
            for data in propstat.iter(f"{{{CALDAV}}}calendar-data"):
                if data.text and data.text.strip():
                    documents.append(data.text.encode("utf-8"))
    return documents


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
