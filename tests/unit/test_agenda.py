"""The timeboxed agenda: fixed order, both languages, whole minutes that always add up to the meeting."""

from __future__ import annotations

import pytest

from postmortem.meeting.agenda import agenda_text, build_agenda
from postmortem.meeting.models import AgendaItem
from postmortem.models import Language

EN_TITLES = [
    "Introduction and blameless reminder",
    "Incident recap",
    "Timeline walkthrough",
    "Root cause discussion",
    "Response effectiveness",
    "Action items and owners",
    "Wrap-up",
]
ZH_TITLES = [
    "开场与对事不对人原则提醒",
    "事故回顾",
    "时间线梳理",
    "根本原因讨论",
    "响应效果评估",
    "行动项与负责人",
    "总结",
]
ROOT_CAUSE = 3


@pytest.mark.parametrize("minutes", [15, 30, 45, 47, 60, 61, 89, 90, 120, 179, 240])
@pytest.mark.parametrize("language", [Language.EN, Language.ZH])
def test_timeboxes_are_whole_minutes_that_sum_exactly(minutes: int, language: Language) -> None:
    agenda = build_agenda(minutes, language)
    assert sum(item.minutes for item in agenda) == minutes
    assert all(isinstance(item.minutes, int) for item in agenda)
    assert agenda[0].minutes >= 2 and agenda[-1].minutes >= 2 and all(item.minutes >= 1 for item in agenda)


def test_every_length_from_15_to_240_sums_exactly_and_respects_the_minimums() -> None:
    for minutes in range(15, 241):
        shares = [item.minutes for item in build_agenda(minutes, Language.EN)]
        assert sum(shares) == minutes, minutes
        assert shares[0] >= 2 and shares[-1] >= 2 and min(shares) >= 1, (minutes, shares)


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        # 5/10/20/25/15/20/5 % of 60 is exact.
        (60, [3, 6, 12, 15, 9, 12, 3]),
        # 120: exact as well.
        (120, [6, 12, 24, 30, 18, 24, 6]),
        # 90: 4.5, 9, 18, 22.5, 13.5, 18, 4.5 → two spare minutes for four .5 remainders; larger weights win.
        (90, [4, 9, 18, 23, 14, 18, 4]),
        # 45: 2.25, 4.5, 9, 11.25, 6.75, 9, 2.25 → the spare two go to .75 (response) and .5 (recap).
        (45, [2, 5, 9, 11, 7, 9, 2]),
        # 47: 2.35, 4.7, 9.4, 11.75, 7.05, 9.4, 2.35 → floors sum 44; the spare three go to
        # .75, .7, then the first of the tied .4s (timeline).
        (47, [2, 5, 10, 12, 7, 9, 2]),
        # 30: intro and wrap-up would get 1.5 → pinned at 2; the other 26 min shared 10:20:25:15:20.
        (30, [2, 3, 6, 7, 4, 6, 2]),
        # 15: pinned 2 + 2, the other 11 shared by weight.
        (15, [2, 1, 3, 3, 2, 2, 2]),
    ],
)
def test_minutes_follow_the_weights_with_largest_remainder_rounding(minutes: int, expected: list[int]) -> None:
    assert [item.minutes for item in build_agenda(minutes, Language.EN)] == expected


def test_root_cause_gets_the_most_time() -> None:
    for minutes in range(15, 241):
        shares = [item.minutes for item in build_agenda(minutes, Language.EN)]
        assert shares[ROOT_CAUSE] == max(shares), (minutes, shares)
        if minutes >= 22:  # below that, whole minutes can tie it with the timeline
            assert shares.count(max(shares)) == 1, (minutes, shares)


def test_longer_meetings_scale_every_item_up() -> None:
    short, long = build_agenda(30, Language.EN), build_agenda(120, Language.EN)
    assert all(b.minutes >= a.minutes for a, b in zip(short, long, strict=True))
    assert long[ROOT_CAUSE].minutes == 30


def test_order_and_titles_in_english_and_chinese() -> None:
    assert [item.title for item in build_agenda(60, Language.EN)] == EN_TITLES
    assert [item.title for item in build_agenda(60, Language.ZH)] == ZH_TITLES
    en, zh = build_agenda(47, Language.EN), build_agenda(47, Language.ZH)
    assert [item.minutes for item in en] == [item.minutes for item in zh]


@pytest.mark.parametrize("minutes", [14, 0, -30])
def test_too_short_a_meeting_is_rejected(minutes: int) -> None:
    with pytest.raises(ValueError, match="at least 15 minutes"):
        build_agenda(minutes, Language.EN)


def test_agenda_text_in_english() -> None:
    assert agenda_text(build_agenda(60, Language.EN), Language.EN) == "\n".join(
        [
            "1. Introduction and blameless reminder (3 min)",
            "2. Incident recap (6 min)",
            "3. Timeline walkthrough (12 min)",
            "4. Root cause discussion (15 min)",
            "5. Response effectiveness (9 min)",
            "6. Action items and owners (12 min)",
            "7. Wrap-up (3 min)",
        ]
    )


def test_agenda_text_in_chinese() -> None:
    assert agenda_text(build_agenda(60, Language.ZH), Language.ZH) == "\n".join(
        [
            "1. 开场与对事不对人原则提醒（3 分钟）",
            "2. 事故回顾（6 分钟）",
            "3. 时间线梳理（12 分钟）",
            "4. 根本原因讨论（15 分钟）",
            "5. 响应效果评估（9 分钟）",
            "6. 行动项与负责人（12 分钟）",
            "7. 总结（3 分钟）",
        ]
    )


def test_agenda_text_formats_any_items() -> None:
    items = [AgendaItem(title="Custom", minutes=7)]
    assert agenda_text(items, Language.EN) == "1. Custom (7 min)"
    assert agenda_text(items, Language.ZH) == "1. Custom（7 分钟）"
    assert agenda_text([], Language.EN) == ""
