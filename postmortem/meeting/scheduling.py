"""Choosing the review meeting's slot: pure, so `now` is always passed in and the same inputs give the same slot.

The review happens 24–72 h after resolution, inside the team's working hours in its own time zone, never
sooner than two working hours from now. Candidates are walked in the team's local wall time and converted
with zoneinfo, so a 09:00 meeting stays 09:00 on both sides of a DST change.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from postmortem.intervals import union
from postmortem.meeting.models import MeetingPolicy, Slot
from postmortem.models import Severity
from postmortem.timezones import validate_timezone

UTC = UTC

REVIEW_AFTER = timedelta(hours=24)
REVIEW_BEFORE = timedelta(hours=72)
BACKFILL_WINDOW = timedelta(hours=48)
NOTICE_WORKING = timedelta(hours=2)
LOOK_AHEAD = timedelta(days=14)
_MAX_SCAN_DAYS = 400  # bounds the working-time walk when a policy has very little working time


def meeting_minutes(policy: MeetingPolicy, severity: Severity | None) -> int:
    """SEV1 reviews get the longer meeting because they usually have more to unpick."""
    return policy.sev1_meeting_minutes if severity == Severity.SEV1 else policy.meeting_minutes


def find_slot(
    *,
    resolved_at: datetime,
    now: datetime,
    policy: MeetingPolicy,
    minutes: int,
    busy: Sequence[tuple[datetime, datetime]] = (),
    step_minutes: int = 30,
) -> Slot:
    """The first step-aligned working slot in the review window that avoids `busy`.

    Window: [earliest, resolved_at + 72 h] with earliest = max(resolved_at + 24 h, now + 2 working hours).
    When that is empty (the 72 h have passed by then) it becomes [earliest, earliest + 48 h]. Candidates
    start inside the window (the meeting may run past its end) and continue up to 14 days after it, so a
    window with no working time or a fully booked one moves forward. Nothing free at all: the first
    candidate, marked `conflict=True`, so a meeting still gets proposed.
    """
    _require_aware("resolved_at", resolved_at)
    _require_aware("now", now)
    busy_utc = _validated_busy(busy)
    zone = _validated_zone(policy)
    start_of_day, end_of_day = policy.working_hours
    _validate_shape(policy, minutes, step_minutes)
    days = frozenset(policy.working_days)
    length = timedelta(minutes=minutes)

    # Arithmetic in UTC: adding hours to a zoned datetime adds wall-clock time, which is wrong across DST.
    resolved = resolved_at.astimezone(UTC)
    earliest = max(resolved + REVIEW_AFTER, add_working_time(now, NOTICE_WORKING, policy))
    latest = resolved + REVIEW_BEFORE
    if latest < earliest:  # a backfill or a late webhook: the 24–72 h window is already gone
        latest = earliest + BACKFILL_WINDOW
    horizon = latest + LOOK_AHEAD

    first: datetime | None = None
    for start in _candidates(zone, days, start_of_day, end_of_day, length, step_minutes, earliest, horizon):
        end = start + length
        if first is None:
            first = start
        if not any(start < b_end and b_start < end for b_start, b_end in busy_utc):
            return Slot(start=start, end=end)
    if first is None:
        raise ValueError(f"no working slot of {minutes} min between {earliest.isoformat()} and {horizon.isoformat()}")
    return Slot(start=first, end=first + length, conflict=True)


def add_working_time(moment: datetime, amount: timedelta, policy: MeetingPolicy) -> datetime:
    """`moment` plus `amount` counted only inside working hours: notice is about people's time, not the clock's.

    Ending exactly at a day's close returns that close (Friday 15:00 + 2 h = Friday 17:00).
    """
    _require_aware("moment", moment)
    zone = _validated_zone(policy)
    start_of_day, end_of_day = policy.working_hours
    if end_of_day <= start_of_day:
        raise ValueError(f"working hours must end after they start, got {start_of_day}–{end_of_day}")
    days = frozenset(policy.working_days)
    at = moment.astimezone(UTC)
    remaining = amount
    day = at.astimezone(zone).date()
    for _ in range(_MAX_SCAN_DAYS):
        if day.weekday() in days:
            open_, close = _working_interval(zone, day, start_of_day, end_of_day)
            if close > at:
                begin = max(open_, at)
                if remaining <= close - begin:
                    return begin + remaining
                remaining -= close - begin
        day += timedelta(days=1)
    raise ValueError(f"not enough working time in {_MAX_SCAN_DAYS} days to add {amount}")


def _candidates(
    zone: ZoneInfo,
    days: frozenset[int],
    start_of_day: time,
    end_of_day: time,
    length: timedelta,
    step_minutes: int,
    earliest: datetime,
    horizon: datetime,
) -> Iterator[datetime]:
    """Step-aligned local starts, in order, whose whole meeting fits one working day; yielded in UTC."""
    first_minute = _first_start_minute(start_of_day, step_minutes)
    last_minute = _minute_of_day(end_of_day)
    day = earliest.astimezone(zone).date()
    last_day = horizon.astimezone(zone).date()
    while day <= last_day:
        if day.weekday() in days:
            open_, close = _working_interval(zone, day, start_of_day, end_of_day)
            for minute in range(first_minute, last_minute, step_minutes):
                wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)  # fold=0 if ambiguous
                if not _exists(wall):
                    continue  # inside a spring-forward gap: that wall time never happens
                start = wall.astimezone(UTC)
                if start > horizon:
                    return
                if start >= earliest and start >= open_ and start + length <= close:
                    yield start
        day += timedelta(days=1)


def _working_interval(zone: ZoneInfo, day: date, start_of_day: time, end_of_day: time) -> tuple[datetime, datetime]:
    """The day's working hours as UTC instants, so meeting lengths are real minutes even on DST days."""
    return _instant(zone, day, start_of_day), _instant(zone, day, end_of_day)


def _instant(zone: ZoneInfo, day: date, wall_time: time) -> datetime:
    """The UTC instant of a local wall time; a time in a DST gap means the moment the clock jumps past it."""
    wall = datetime.combine(day, wall_time, tzinfo=zone)
    for _ in range(24 * 60):
        if _exists(wall):
            return wall.astimezone(UTC)
        wall = (wall.replace(tzinfo=None) + timedelta(minutes=1)).replace(tzinfo=zone)
    return wall.astimezone(UTC)  # pragma: no cover - no zone has a gap longer than a day


def _exists(wall: datetime) -> bool:
    """A local time exists if it survives the round trip through UTC unchanged."""
    back = wall.astimezone(UTC).astimezone(wall.tzinfo)
    return back.replace(tzinfo=None) == wall.replace(tzinfo=None)


def _minute_of_day(value: time) -> int:
    return value.hour * 60 + value.minute


def _first_start_minute(start_of_day: time, step_minutes: int) -> int:
    """The first local minute of the day on a step boundary (counted from midnight) at or after the opening."""
    opening = _minute_of_day(start_of_day) + (1 if start_of_day.second or start_of_day.microsecond else 0)
    return -(-opening // step_minutes) * step_minutes


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _validated_zone(policy: MeetingPolicy) -> ZoneInfo:
    return ZoneInfo(validate_timezone(policy.timezone))


def _validated_busy(busy: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The busy intervals in UTC, overlapping and touching ones joined (calendars report them as they are)."""
    intervals = []
    for b_start, b_end in busy:
        _require_aware("busy start", b_start)
        _require_aware("busy end", b_end)
        if b_end < b_start:
            raise ValueError(f"busy interval ends before it starts: {b_start.isoformat()}–{b_end.isoformat()}")
        intervals.append((b_start.astimezone(UTC), b_end.astimezone(UTC)))
    return union(intervals)


def _validate_shape(policy: MeetingPolicy, minutes: int, step_minutes: int) -> None:
    """Reject policies that could never yield a slot, with a message that says what to change."""
    if minutes <= 0:
        raise ValueError(f"meeting length must be positive, got {minutes} min")
    if not 0 < step_minutes <= 24 * 60:
        raise ValueError(f"step_minutes must be between 1 and 1440, got {step_minutes}")
    if not policy.working_days or any(not 0 <= d <= 6 for d in policy.working_days):
        raise ValueError(f"working_days must be a non-empty list of 0 (Monday)..6 (Sunday), got {policy.working_days}")
    start_of_day, end_of_day = policy.working_hours
    if end_of_day <= start_of_day:
        raise ValueError(f"working hours must end after they start, got {start_of_day}–{end_of_day}")
    day_span = datetime.combine(date.min, end_of_day) - datetime.combine(date.min, start_of_day)
    day_minutes = int(day_span.total_seconds()) // 60
    if minutes > day_minutes:
        raise ValueError(
            f"a {minutes} min meeting does not fit in the {day_minutes} min working day "
            f"({start_of_day:%H:%M}–{end_of_day:%H:%M})"
        )
    first = _first_start_minute(start_of_day, step_minutes)
    if first + minutes > _minute_of_day(end_of_day):
        raise ValueError(
            f"no {step_minutes}-minute-aligned start lets a {minutes} min meeting end by {end_of_day:%H:%M}"
        )


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def working_hours_text(policy: MeetingPolicy) -> str:
    """The team's working time as people say it: "Mon–Fri 09:00–17:00 (Europe/Berlin)"."""
    days = sorted(set(policy.working_days))
    contiguous = len(days) > 2 and days == list(range(days[0], days[-1] + 1))
    names = f"{DAY_NAMES[days[0]]}–{DAY_NAMES[days[-1]]}" if contiguous else ", ".join(DAY_NAMES[d] for d in days)
    start, end = policy.working_hours
    return f"{names} {start:%H:%M}–{end:%H:%M} ({policy.timezone})"


def outside_working_hours(start: datetime, end: datetime, policy: MeetingPolicy) -> str | None:
    """Why a meeting from `start` to `end` is outside the team's working time (it must fit one working
    day's hours, in the team's zone), or None when it is inside."""
    _require_aware("start", start)
    zone = _validated_zone(policy)
    local = start.astimezone(zone)
    if local.weekday() in policy.working_days:
        open_, close = _working_interval(zone, local.date(), *policy.working_hours)
        if open_ <= start and end <= close:
            return None
    return (
        f"{local:%a %Y-%m-%d %H:%M} {policy.timezone} is outside the team's working hours, {working_hours_text(policy)}"
    )
