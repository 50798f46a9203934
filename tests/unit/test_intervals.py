"""The one union of intervals: overlapping, touching and nested runs join; order and emptiness are handled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postmortem.intervals import union

T0 = datetime(2024, 3, 10, 0, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_empty() -> None:
    assert union([]) == []


def test_disjoint_intervals_stay_apart_and_sorted() -> None:
    assert union([(5, 6), (1, 2), (3, 4)]) == [(1, 2), (3, 4), (5, 6)]


def test_overlapping_intervals_join() -> None:
    assert union([(1, 4), (3, 7)]) == [(1, 7)]


def test_touching_intervals_join() -> None:
    assert union([(1, 3), (3, 5)]) == [(1, 5)]


def test_nested_interval_is_absorbed() -> None:
    assert union([(1, 10), (2, 3), (4, 9)]) == [(1, 10)]


def test_unsorted_input_with_mixed_cases() -> None:
    spans = [(20, 25), (0, 2), (8, 12), (1, 5), (12, 15), (9, 10)]
    assert union(spans) == [(0, 5), (8, 15), (20, 25)]


def test_empty_intervals_are_kept_or_absorbed() -> None:
    assert union([(4, 4), (1, 2)]) == [(1, 2), (4, 4)]
    assert union([(1, 5), (3, 3)]) == [(1, 5)]


def test_datetimes() -> None:
    assert union([(at(30), at(90)), (at(0), at(60)), (at(120), at(150))]) == [
        (at(0), at(90)),
        (at(120), at(150)),
    ]


def test_input_is_left_alone_and_any_iterable_will_do() -> None:
    spans = [(3, 4), (1, 2)]
    assert union(iter(spans)) == [(1, 2), (3, 4)]
    assert spans == [(3, 4), (1, 2)]


def test_an_interval_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        union([(1, 2), (5, 3)])
