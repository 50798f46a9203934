"""Choosing the review slot: every expected time is written by hand in the team's wall clock and converted
with zoneinfo (and, around DST, also spelled out in UTC) — never derived from the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from postmortem.meeting.models import MeetingPolicy, Slot
from postmortem.meeting.scheduling import add_working_time, find_slot, meeting_minutes
from postmortem.models import Severity

UTC = UTC
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def at(zone: str, year: int, month: int, day: int, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    """A wall-clock time in `zone`, as an aware datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def slot_for(
    resolved_at: datetime, policy: MeetingPolicy, *, now: datetime | None = None, minutes: int = 60, **kwargs: object
) -> Slot:
    """The usual case: the webhook arrives as the incident resolves."""
    return find_slot(resolved_at=resolved_at, now=now or resolved_at, policy=policy, minutes=minutes, **kwargs)  # type: ignore[arg-type]


def assert_slot(slot: Slot, start: datetime, minutes: int = 60, conflict: bool = False) -> None:
    # Compare in UTC: Python never equates an ambiguous local time with an instant in another zone.
    start = start.astimezone(UTC)
    assert slot.start == start and slot.end == start + timedelta(minutes=minutes)
    assert slot.start.utcoffset() == timedelta(0) and slot.end.utcoffset() == timedelta(0)  # always UTC
    assert slot.conflict is conflict


# --- the 24–72 h window on ordinary weeks -------------------------------------------------------------


def test_tuesday_resolution_meets_wednesday_at_the_first_aligned_slot_24h_later() -> None:
    resolved = utc(2024, 6, 11, 10, 10)
    assert resolved.weekday() == 1  # Tuesday
    assert_slot(slot_for(resolved, MeetingPolicy()), utc(2024, 6, 12, 10, 30))


def test_exactly_24h_on_a_step_boundary_is_taken_as_is() -> None:
    assert_slot(slot_for(utc(2024, 6, 11, 10, 0), MeetingPolicy()), utc(2024, 6, 12, 10, 0))


def test_late_tuesday_resolution_moves_to_thursday_morning_when_wednesday_has_no_room() -> None:
    # Wed 16:45 → next boundary 17:00, which is closing time: nothing fits on Wednesday.
    assert_slot(slot_for(utc(2024, 6, 11, 16, 45), MeetingPolicy()), utc(2024, 6, 13, 9, 0))


def test_friday_evening_resolution_goes_to_monday_after_two_working_hours_notice() -> None:
    resolved = at(BERLIN, 2024, 6, 14, 18, 0)  # Friday 18:00 CEST; 24 h later is Saturday
    assert resolved.weekday() == 4
    # Handled at once (now = Fri 18:00): the two working hours of notice are Monday 09:00–11:00.
    expected = at(BERLIN, 2024, 6, 17, 11, 0)  # Monday 11:00 CEST
    assert expected == utc(2024, 6, 17, 9, 0)
    assert_slot(slot_for(resolved, MeetingPolicy(timezone=BERLIN)), expected)


def test_friday_daytime_resolution_is_monday_at_nine() -> None:
    # Notice ends Fri 12:20; window is Sat 10:20 – Mon 10:20: Monday 09:00 is inside it.
    resolved = at(BERLIN, 2024, 6, 14, 10, 20)
    assert_slot(slot_for(resolved, MeetingPolicy(timezone=BERLIN)), at(BERLIN, 2024, 6, 17, 9, 0))


def test_window_without_working_time_moves_forward_to_the_next_working_slot() -> None:
    # Thursday 17:30 → window Fri 17:30 – Sun 17:30 holds no working time at all.
    resolved = utc(2024, 6, 13, 17, 30)
    assert_slot(slot_for(resolved, MeetingPolicy()), utc(2024, 6, 17, 9, 0))


# --- time zones -------------------------------------------------------------------------------------


def test_los_angeles_team() -> None:
    resolved = at("America/Los_Angeles", 2024, 6, 11, 14, 0)  # Tuesday 14:00 PDT
    expected = at("America/Los_Angeles", 2024, 6, 12, 14, 0)
    assert expected == utc(2024, 6, 12, 21, 0)
    assert_slot(slot_for(resolved, MeetingPolicy(timezone="America/Los_Angeles")), expected)


def test_shanghai_team_whose_afternoon_is_full_goes_to_next_morning() -> None:
    # Wed 16:10 CST → 16:30 would end 17:30; Thursday 09:00 CST is Thursday 01:00 UTC.
    resolved = at("Asia/Shanghai", 2024, 6, 11, 16, 10)
    expected = at("Asia/Shanghai", 2024, 6, 13, 9, 0)
    assert expected == utc(2024, 6, 13, 1, 0)
    assert_slot(slot_for(resolved, MeetingPolicy(timezone="Asia/Shanghai")), expected)


def test_kolkata_half_hour_offset_aligns_to_local_boundaries() -> None:
    resolved = at("Asia/Kolkata", 2024, 6, 10, 10, 5)  # Monday 10:05 IST
    policy = MeetingPolicy(timezone="Asia/Kolkata")
    expected = at("Asia/Kolkata", 2024, 6, 11, 10, 30)
    assert expected == utc(2024, 6, 11, 5, 0)
    assert_slot(slot_for(resolved, policy), expected)
    # Hourly steps: local 11:00 IST (05:30 UTC), not the UTC hour 06:00 (11:30 IST) nor 05:00 (10:30 IST).
    hourly = at("Asia/Kolkata", 2024, 6, 11, 11, 0)
    assert hourly == utc(2024, 6, 11, 5, 30)
    assert_slot(slot_for(resolved, policy, step_minutes=60), hourly)


def test_sunday_to_thursday_week() -> None:
    policy = MeetingPolicy(timezone="Asia/Riyadh", working_days=[6, 0, 1, 2, 3])
    resolved = at("Asia/Riyadh", 2024, 6, 13, 15, 0)  # Thursday 15:00; Friday and Saturday are the weekend
    expected = at("Asia/Riyadh", 2024, 6, 16, 9, 0)  # Sunday 09:00 +03
    assert expected.weekday() == 6 and expected == utc(2024, 6, 16, 6, 0)
    assert_slot(slot_for(resolved, policy), expected)
    # The same Thursday resolution for a Monday–Friday team would meet on Friday.
    assert_slot(slot_for(resolved, MeetingPolicy(timezone="Asia/Riyadh")), at("Asia/Riyadh", 2024, 6, 14, 15, 0))


def test_custom_working_hours() -> None:
    policy = MeetingPolicy(timezone="Europe/London", working_hours=(time(10, 0), time(18, 30)))
    # Tue 18:00 GMT → Wed 18:00: the last start that ends by 18:30 is 17:30, so Thursday 10:00.
    assert_slot(slot_for(at("Europe/London", 2024, 1, 16, 18, 0), policy), utc(2024, 1, 18, 10, 0))
    # Tue 16:50 → Wed 17:00 ends 18:00, inside the longer day.
    assert_slot(slot_for(at("Europe/London", 2024, 1, 16, 16, 50), policy), utc(2024, 1, 17, 17, 0))


def test_working_hours_not_on_a_step_boundary_start_at_the_next_boundary() -> None:
    policy = MeetingPolicy(working_hours=(time(9, 15), time(17, 0)))
    # Thursday 17:30 → first working slot is Monday; the first :00/:30 boundary after 09:15 is 09:30.
    assert_slot(slot_for(utc(2024, 6, 13, 17, 30), policy), utc(2024, 6, 17, 9, 30))


# --- DST --------------------------------------------------------------------------------------------


def test_berlin_spring_forward_keeps_nine_o_clock_local() -> None:
    # Fri 29 Mar 2024 10:00 CET (09:00 UTC); clocks go forward on Sun 31 Mar.
    resolved = at(BERLIN, 2024, 3, 29, 10, 0)
    assert resolved == utc(2024, 3, 29, 9, 0)
    expected = at(BERLIN, 2024, 4, 1, 9, 0)  # Monday 09:00 CEST
    assert expected == utc(2024, 4, 1, 7, 0)
    assert_slot(slot_for(resolved, MeetingPolicy(timezone=BERLIN)), expected)
    # In winter the same wall time is 08:00 UTC.
    assert_slot(slot_for(at(BERLIN, 2024, 1, 12, 10, 0), MeetingPolicy(timezone=BERLIN)), utc(2024, 1, 15, 8, 0))


def test_berlin_fall_back_keeps_nine_o_clock_local() -> None:
    resolved = at(BERLIN, 2024, 10, 25, 11, 0)  # Friday 11:00 CEST (09:00 UTC); clocks go back Sun 27 Oct
    assert resolved == utc(2024, 10, 25, 9, 0)
    expected = at(BERLIN, 2024, 10, 28, 9, 0)  # Monday 09:00 CET
    assert expected == utc(2024, 10, 28, 8, 0)
    assert_slot(slot_for(resolved, MeetingPolicy(timezone=BERLIN)), expected)


def test_slot_on_the_day_the_clocks_change_uses_the_new_offset() -> None:
    every_day = MeetingPolicy(timezone=BERLIN, working_days=list(range(7)))
    # Sat 30 Mar 09:00 CET = 08:00 UTC; +24 h = Sun 31 Mar 08:00 UTC = 10:00 CEST (not 09:00).
    expected = at(BERLIN, 2024, 3, 31, 10, 0)
    assert expected == utc(2024, 3, 31, 8, 0)
    assert_slot(slot_for(at(BERLIN, 2024, 3, 30, 9, 0), every_day), expected)
    # Sat 26 Oct 09:00 CEST = 07:00 UTC; +24 h = Sun 27 Oct 07:00 UTC = 08:00 CET, so 09:00 CET = 08:00 UTC.
    expected = at(BERLIN, 2024, 10, 27, 9, 0)
    assert expected == utc(2024, 10, 27, 8, 0)
    assert_slot(slot_for(at(BERLIN, 2024, 10, 26, 9, 0), every_day), expected)


def test_non_existent_local_times_are_skipped() -> None:
    # Night shift 01:00–05:00 every day; on Sun 31 Mar 2024 02:00–02:59 never happens in Berlin.
    night = MeetingPolicy(timezone=BERLIN, working_days=list(range(7)), working_hours=(time(1, 0), time(5, 0)))
    resolved = utc(2024, 3, 30, 0, 40)  # +24 h = Sun 00:40 UTC = 01:40 CET
    expected = at(BERLIN, 2024, 3, 31, 3, 0)  # 02:00 and 02:30 do not exist; next is 03:00 CEST
    assert expected == utc(2024, 3, 31, 1, 0)
    assert_slot(slot_for(resolved, night), expected)


def test_meeting_length_on_a_short_dst_day_is_real_minutes() -> None:
    # Weekend nights 01:00–05:00; on Sun 31 Mar 2024 that is only 3 real hours (00:00–03:00 UTC).
    night = MeetingPolicy(timezone=BERLIN, working_days=[5, 6], working_hours=(time(1, 0), time(5, 0)))
    resolved = utc(2024, 3, 30, 0, 0)  # Sat 01:00 CET; +24 h = Sun 00:00 UTC = 01:00 CET
    assert_slot(slot_for(resolved, night, minutes=180), utc(2024, 3, 31, 0, 0), minutes=180)
    # 210 min fits the 4 wall-clock hours but not the 3 real ones: next Saturday 01:00 CEST.
    assert_slot(slot_for(resolved, night, minutes=210), at(BERLIN, 2024, 4, 6, 1, 0), minutes=210)


def test_ambiguous_local_times_use_their_first_occurrence() -> None:
    # On Sun 27 Oct 2024 Berlin's 02:00–02:59 happens twice (CEST, then CET).
    night = MeetingPolicy(timezone=BERLIN, working_days=list(range(7)), working_hours=(time(1, 0), time(5, 0)))
    first_0230 = at(BERLIN, 2024, 10, 27, 2, 30, fold=0)
    assert first_0230.astimezone(UTC) == utc(2024, 10, 27, 0, 30)
    # +24 h = 00:10 UTC = 02:10 CEST → 02:30 CEST.
    assert_slot(slot_for(utc(2024, 10, 26, 0, 10), night), first_0230)
    # +24 h = 01:10 UTC = 02:10 CET: the second 02:30 (01:30 UTC) is not offered; next is 03:00 CET.
    expected = at(BERLIN, 2024, 10, 27, 3, 0)
    assert expected == utc(2024, 10, 27, 2, 0)
    assert_slot(slot_for(utc(2024, 10, 26, 1, 10), night), expected)


def test_new_york_spring_forward() -> None:
    resolved = at(NEW_YORK, 2024, 3, 8, 10, 0)  # Friday 10:00 EST; clocks go forward Sun 10 Mar
    assert resolved == utc(2024, 3, 8, 15, 0)
    expected = at(NEW_YORK, 2024, 3, 11, 9, 0)  # Monday 09:00 EDT
    assert expected == utc(2024, 3, 11, 13, 0)
    assert_slot(slot_for(resolved, MeetingPolicy(timezone=NEW_YORK)), expected)


def test_new_york_fall_back() -> None:
    resolved = at(NEW_YORK, 2024, 11, 1, 11, 0)  # Friday 11:00 EDT; clocks go back Sun 3 Nov
    assert resolved == utc(2024, 11, 1, 15, 0)
    expected = at(NEW_YORK, 2024, 11, 4, 9, 0)  # Monday 09:00 EST
    assert expected == utc(2024, 11, 4, 14, 0)
    assert_slot(slot_for(resolved, MeetingPolicy(timezone=NEW_YORK)), expected)


# --- never in the past: now + 2 working hours, backfills ----------------------------------------------


def test_two_working_hours_skip_the_weekend() -> None:
    policy = MeetingPolicy()
    assert add_working_time(utc(2024, 6, 14, 16, 30), timedelta(hours=2), policy) == utc(2024, 6, 17, 10, 30)
    assert add_working_time(utc(2024, 6, 15, 12, 0), timedelta(hours=2), policy) == utc(2024, 6, 17, 11, 0)
    assert add_working_time(utc(2024, 6, 12, 7, 0), timedelta(hours=2), policy) == utc(2024, 6, 12, 11, 0)
    # Ending exactly at closing time stays on that day.
    assert add_working_time(utc(2024, 6, 14, 15, 0), timedelta(hours=2), policy) == utc(2024, 6, 14, 17, 0)


def test_late_webhook_inside_the_window_starts_two_working_hours_from_now() -> None:
    # Resolved Tue 10:00, processed Wed 09:40: +24 h (Wed 10:00) is too soon; now + 2 working h = 11:40 → 12:00.
    slot = slot_for(utc(2024, 6, 11, 10, 0), MeetingPolicy(), now=utc(2024, 6, 12, 9, 40))
    assert_slot(slot, utc(2024, 6, 12, 12, 0))


def test_backfill_starts_two_working_hours_from_now() -> None:
    now = utc(2024, 6, 12, 11, 10)  # Wednesday
    slot = slot_for(now - timedelta(days=10), MeetingPolicy(), now=now)
    assert_slot(slot, utc(2024, 6, 12, 13, 30))
    assert slot.start >= now + timedelta(hours=2)


def test_backfill_processed_late_on_friday_goes_to_monday() -> None:
    now = at(BERLIN, 2024, 6, 14, 16, 30)  # Friday 16:30 CEST: 30 working min left, 90 more on Monday
    slot = slot_for(now - timedelta(days=10), MeetingPolicy(timezone=BERLIN), now=now)
    assert_slot(slot, at(BERLIN, 2024, 6, 17, 10, 30))


def test_backfill_window_without_working_time_keeps_looking_forward() -> None:
    # Friday 15:00 + 2 working h = Friday 17:00; [Fri 17:00, Sun 17:00] holds no working time → Monday 09:00.
    now = utc(2024, 6, 14, 15, 0)
    assert_slot(slot_for(now - timedelta(days=10), MeetingPolicy(), now=now), utc(2024, 6, 17, 9, 0))


def test_window_that_closes_before_the_notice_period_counts_as_passed() -> None:
    # Resolved Mon 09:00, processed Thu 08:30: earliest Thu 11:00 is past +72 h (Thu 09:00) → [Thu 11:00, Sat 11:00].
    slot = slot_for(utc(2024, 6, 10, 9, 0), MeetingPolicy(), now=utc(2024, 6, 13, 8, 30))
    assert_slot(slot, utc(2024, 6, 13, 11, 0))


# --- busy time --------------------------------------------------------------------------------------


def test_busy_block_in_another_zone_pushes_to_the_first_free_slot_after_it() -> None:
    policy = MeetingPolicy(timezone=BERLIN)
    resolved = at(BERLIN, 2024, 6, 11, 10, 0)  # Tuesday; earliest Wed 10:00 CEST
    busy = [(at(NEW_YORK, 2024, 6, 12, 4, 0), at(NEW_YORK, 2024, 6, 12, 6, 15))]  # = 10:00–12:15 CEST
    expected = at(BERLIN, 2024, 6, 12, 12, 30)  # 12:00 would overlap until 12:15
    assert expected == utc(2024, 6, 12, 10, 30)
    assert_slot(slot_for(resolved, policy, busy=busy), expected)


def test_busy_block_ending_at_a_boundary_leaves_that_boundary_free() -> None:
    busy = [(utc(2024, 6, 12, 10, 0), utc(2024, 6, 12, 12, 0))]
    assert_slot(slot_for(utc(2024, 6, 11, 10, 0), MeetingPolicy(), busy=busy), utc(2024, 6, 12, 12, 0))


def test_busy_block_starting_mid_meeting_blocks_that_candidate() -> None:
    # 10:00–11:00 would overlap a 10:45 block; 10:30 too; first free is 11:30 after the 10:45–11:15 block.
    busy = [(utc(2024, 6, 12, 10, 45), utc(2024, 6, 12, 11, 15))]
    assert_slot(slot_for(utc(2024, 6, 11, 9, 40), MeetingPolicy(), busy=busy), utc(2024, 6, 12, 11, 30))


def test_overlapping_and_touching_busy_blocks_as_a_calendar_reports_them_count_as_one() -> None:
    # Unsorted, overlapping (10:00–11:00, 10:30–11:30) and touching (11:30–12:00): busy 10:00–12:00.
    busy = [
        (utc(2024, 6, 12, 11, 30), utc(2024, 6, 12, 12, 0)),
        (utc(2024, 6, 12, 10, 0), utc(2024, 6, 12, 11, 0)),
        (utc(2024, 6, 12, 10, 30), utc(2024, 6, 12, 11, 30)),
    ]
    assert_slot(slot_for(utc(2024, 6, 11, 10, 0), MeetingPolicy(), busy=busy), utc(2024, 6, 12, 12, 0))


def test_whole_window_busy_takes_the_next_free_slot_after_it() -> None:
    resolved = utc(2024, 6, 11, 10, 0)  # window Wed 10:00 – Fri 10:00
    busy = [(utc(2024, 6, 12, 0, 0), utc(2024, 6, 15, 0, 0))]
    assert_slot(slot_for(resolved, MeetingPolicy(), busy=busy), utc(2024, 6, 17, 9, 0))


def test_free_slot_up_to_fourteen_days_after_the_window_is_found() -> None:
    resolved = utc(2024, 6, 11, 10, 0)  # window ends Fri 14 Jun 10:00; looking ahead until Fri 28 Jun 10:00
    busy = [(utc(2024, 6, 12, 0, 0), utc(2024, 6, 28, 9, 0))]
    assert_slot(slot_for(resolved, MeetingPolicy(), busy=busy), utc(2024, 6, 28, 9, 0))


def test_everything_busy_for_fourteen_days_returns_the_first_candidate_as_a_conflict() -> None:
    resolved = utc(2024, 6, 11, 10, 0)
    busy = [(utc(2024, 6, 12, 0, 0), utc(2024, 6, 28, 12, 0))]
    assert_slot(slot_for(resolved, MeetingPolicy(), busy=busy), utc(2024, 6, 12, 10, 0), conflict=True)
    month = [(utc(2024, 6, 1, 0, 0), utc(2024, 7, 31, 0, 0))]
    assert_slot(slot_for(resolved, MeetingPolicy(), busy=month), utc(2024, 6, 12, 10, 0), conflict=True)


# --- SEV1 length ------------------------------------------------------------------------------------


def test_meeting_minutes_by_severity() -> None:
    policy = MeetingPolicy(meeting_minutes=45, sev1_meeting_minutes=120)
    assert meeting_minutes(policy, Severity.SEV1) == 120
    assert [meeting_minutes(policy, s) for s in (Severity.SEV2, Severity.SEV3, Severity.SEV4, None)] == [45] * 4


def test_ninety_minute_meeting_must_end_by_closing_time() -> None:
    sev1 = meeting_minutes(MeetingPolicy(), Severity.SEV1)
    assert sev1 == 90
    # Wed 15:20 → 15:30–17:00 fits exactly.
    assert_slot(slot_for(utc(2024, 6, 11, 15, 20), MeetingPolicy(), minutes=sev1), utc(2024, 6, 12, 15, 30), 90)
    # Wed 15:35 → 16:00 and 16:30 would run past 17:00 → Thursday 09:00.
    assert_slot(slot_for(utc(2024, 6, 11, 15, 35), MeetingPolicy(), minutes=sev1), utc(2024, 6, 13, 9, 0), 90)
    # A one-hour review on the same day still takes 16:00.
    assert_slot(slot_for(utc(2024, 6, 11, 15, 35), MeetingPolicy(), minutes=60), utc(2024, 6, 12, 16, 0), 60)


# --- validation -------------------------------------------------------------------------------------


def _call(**overrides: object) -> Slot:
    kwargs: dict[str, object] = {
        "resolved_at": utc(2024, 6, 11, 10, 0),
        "now": utc(2024, 6, 11, 10, 0),
        "policy": MeetingPolicy(),
        "minutes": 60,
    }
    kwargs.update(overrides)
    return find_slot(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"resolved_at": datetime(2024, 6, 11, 10, 0)}, "resolved_at must be timezone-aware"),
        ({"now": datetime(2024, 6, 11, 10, 0)}, "now must be timezone-aware"),
        ({"busy": [(datetime(2024, 6, 12, 10, 0), utc(2024, 6, 12, 11, 0))]}, "busy start must be timezone-aware"),
        ({"busy": [(utc(2024, 6, 12, 11, 0), utc(2024, 6, 12, 10, 0))]}, "ends before it starts"),
        ({"minutes": 0}, "must be positive"),
        ({"minutes": -30}, "must be positive"),
        ({"step_minutes": 0}, "step_minutes"),
        ({"policy": MeetingPolicy(working_hours=(time(17, 0), time(9, 0)))}, "must end after they start"),
        ({"policy": MeetingPolicy(working_hours=(time(9, 0), time(9, 0)))}, "must end after they start"),
        (
            {"policy": MeetingPolicy(working_hours=(time(9, 0), time(10, 0))), "minutes": 90},
            "90 min meeting does not fit in the 60 min working day",
        ),
        ({"policy": MeetingPolicy(working_hours=(time(9, 10), time(10, 10)))}, "30-minute-aligned start"),
        ({"policy": MeetingPolicy(working_days=[])}, "working_days"),
        ({"policy": MeetingPolicy(working_days=[0, 7])}, "working_days"),
        ({"policy": MeetingPolicy(timezone="Mars/Olympus")}, "unknown time zone"),
    ],
)
def test_invalid_inputs_are_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _call(**overrides)


def test_a_meeting_as_long_as_the_working_day_is_allowed() -> None:
    # One working hour a day: Tue 10:00 + 2 working h = Thu 10:00 (Wed 09–10, Thu 09–10), so Friday 09:00.
    policy = MeetingPolicy(working_hours=(time(9, 0), time(10, 0)))
    assert_slot(_call(policy=policy), utc(2024, 6, 14, 9, 0))
