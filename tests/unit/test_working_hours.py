"""A reschedule must fit the team's working hours, in its own time zone (the 409's words)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from postmortem.meeting.models import MeetingPolicy
from postmortem.meeting.scheduling import outside_working_hours, working_hours_text

BERLIN = MeetingPolicy(timezone="Europe/Berlin")
HOUR = timedelta(hours=1)


def at(day: int, hour: int, minute: int = 0, zone: str = "Europe/Berlin") -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo(zone))  # 2026-03-02 is a Monday


def test_inside_the_working_day_is_fine() -> None:
    assert outside_working_hours(at(2, 9), at(2, 10), BERLIN) is None
    assert outside_working_hours(at(6, 16), at(6, 17), BERLIN) is None  # Friday, ends at the close
    # 08:00 UTC is 09:00 in Berlin in winter: judged in the team's zone, not the caller's.
    assert (
        outside_working_hours(datetime(2026, 3, 3, 8, tzinfo=UTC), datetime(2026, 3, 3, 9, tzinfo=UTC), BERLIN) is None
    )


def test_saturday_night_and_running_past_the_close_are_outside() -> None:
    saturday = outside_working_hours(at(7, 3), at(7, 3) + HOUR, BERLIN)
    assert saturday == (
        "Sat 2026-03-07 03:00 Europe/Berlin is outside the team's working hours, Mon–Fri 09:00–17:00 (Europe/Berlin)"
    )
    assert outside_working_hours(at(2, 16, 30), at(2, 17, 30), BERLIN) is not None
    assert outside_working_hours(at(2, 8, 30), at(2, 9, 30), BERLIN) is not None


def test_the_hours_are_named_as_people_say_them() -> None:
    policy = MeetingPolicy(timezone="Asia/Shanghai", working_days=[0, 2, 4], working_hours=(time(10), time(18, 30)))
    assert working_hours_text(policy) == "Mon, Wed, Fri 10:00–18:30 (Asia/Shanghai)"
    assert working_hours_text(BERLIN) == "Mon–Fri 09:00–17:00 (Europe/Berlin)"
