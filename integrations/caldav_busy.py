"""Busy time out of the iCalendar a CalDAV server answers: VFREEBUSY periods, or events and their recurrences.

Pure functions over bytes (the HTTP exchange is `caldav_calendar.py`). Every interval is in UTC and
clipped to the asked window; floating times and all-day dates are read as UTC. Intervals come back
sorted but not joined: overlapping busy time is the scheduler's to merge, with the one interval
union of the domain.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from dateutil.rrule import rrule, rruleset, rrulestr
from icalendar import Calendar

from postmortem.timezones import as_utc  # a floating (naive) time is read as UTC

__all__ = ["BUSY_TYPES", "Interval", "busy_from_events", "busy_from_freebusy"]

BUSY_TYPES = frozenset({"BUSY", "BUSY-UNAVAILABLE", "BUSY-TENTATIVE"})
_MAX_OCCURRENCES = 10_000  # per recurring event, when the server leaves the expansion to us

Interval = tuple[datetime, datetime]


def busy_from_freebusy(ics: bytes, start: datetime, end: datetime) -> list[Interval]:
    """The busy periods (FBTYPE BUSY, BUSY-TENTATIVE, BUSY-UNAVAILABLE) of a VFREEBUSY answer."""
    calendar = Calendar.from_ical(ics)
    components = calendar.walk("VFREEBUSY")
    if not components:
        raise ValueError("no VFREEBUSY component")
    intervals: list[Interval] = []
    for component in components:
        periods = component.get("FREEBUSY")
        for period in periods if isinstance(periods, list) else [periods] if periods is not None else []:
            if str(period.params.get("FBTYPE", "BUSY")).upper() not in BUSY_TYPES:
                continue
            begin, until = period.dt
            begin = as_utc(begin)
            until = begin + until if isinstance(until, timedelta) else as_utc(until)
            intervals.append((begin, until))
    return sorted(_clip(intervals, start, end))


def busy_from_events(ics: bytes, start: datetime, end: datetime) -> list[Interval]:
    """Busy intervals of the VEVENTs in one calendar object (opaque, not cancelled), recurrences expanded."""
    calendar = Calendar.from_ical(ics)
    events = list(calendar.walk("VEVENT"))
    # An instance moved or cancelled on its own (RECURRENCE-ID) replaces the master's occurrence.
    overridden = {as_utc(_start_of(event.decoded("RECURRENCE-ID"))) for event in events if "RECURRENCE-ID" in event}
    intervals: list[Interval] = []
    for event in events:
        if "DTSTART" not in event:
            continue
        if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        first, length = _span(event)
        if "RECURRENCE-ID" in event or ("RRULE" not in event and "RDATE" not in event):
            intervals.append((first, first + length))
            continue
        for occurrence in _occurrences(event, length, start, end):
            if occurrence not in overridden:
                intervals.append((occurrence, occurrence + length))
    return _clip(intervals, start, end)


def _clip(intervals: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    clipped = []
    for begin, until in intervals:
        begin, until = max(begin, start), min(until, end)
        if begin < until:
            clipped.append((begin, until))
    return clipped


def _span(event: Any) -> tuple[datetime, timedelta]:
    """(start in UTC, length) of an event: DTEND, else DURATION, else a day for a date, else nothing."""
    raw_start = event.decoded("DTSTART")
    first = as_utc(_start_of(raw_start))
    if "DTEND" in event:
        length = as_utc(_start_of(event.decoded("DTEND"))) - first
    elif "DURATION" in event:
        length = event.decoded("DURATION")
    else:
        length = timedelta(days=1) if not isinstance(raw_start, datetime) else timedelta(0)
    return first, max(length, timedelta(0))


def _occurrences(event: Any, length: timedelta, start: datetime, end: datetime) -> list[datetime]:
    """Occurrence starts (UTC) of a recurring event that overlap [start, end), for servers that did not expand."""
    local_start = event.decoded("DTSTART")
    if not isinstance(local_start, datetime):
        local_start = datetime.combine(local_start, time(0), tzinfo=UTC)
    elif local_start.tzinfo is None:
        local_start = local_start.replace(tzinfo=UTC)
    rules = rruleset()
    for prop in _as_list(event.get("RRULE")):
        text = prop.to_ical().decode()
        if "UNTIL=" in text and "Z" not in text.split("UNTIL=", 1)[1].split(";", 1)[0]:
            # a date or floating UNTIL next to an aware DTSTART, which dateutil refuses: read it as
            # the end of that day in UTC (at worst an occurrence too many counts as busy)
            until = text.split("UNTIL=", 1)[1].split(";", 1)[0]
            text = text.replace(f"UNTIL={until}", f"UNTIL={until[:8]}T235959Z")
        rules.rrule(cast(rrule, rrulestr(text, dtstart=local_start)))  # one RRULE value parses to one rule
    for name, add in (("RDATE", rules.rdate), ("EXDATE", rules.exdate)):
        for prop in _as_list(event.get(name)):
            for value in prop.dts:
                moment = value.dt[0] if isinstance(value.dt, tuple) else value.dt
                add(_as_local(moment, local_start))
    rules.rdate(local_start)
    found: list[datetime] = []
    for index, occurrence in enumerate(rules.between(start - length - timedelta(seconds=1), end, inc=True)):
        if index >= _MAX_OCCURRENCES:
            break
        moment = occurrence.astimezone(UTC)
        if moment + length > start and moment < end:
            found.append(moment)
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _as_local(value: date | datetime, like: datetime) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, like.timetz())
    if value.tzinfo is None:
        return value.replace(tzinfo=like.tzinfo)
    return value


def _start_of(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=UTC)
