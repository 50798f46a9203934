"""The union of intervals, for anything ordered: impact time, busy time, redacted spans of text.

One implementation, so "do touching intervals join?" has one answer everywhere: they do. An interval
is a `(start, end)` pair with `start <= end`, half-open or closed alike; only `<` is used to compare.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

__all__ = ["union"]


class Comparable(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


T = TypeVar("T", bound=Comparable)


def union(intervals: Iterable[tuple[T, T]]) -> list[tuple[T, T]]:
    """The intervals sorted, with every overlapping, touching or nested run joined into one.

    Raises ValueError for an interval that ends before it starts (it has no meaning to join).
    """
    merged: list[tuple[T, T]] = []
    for start, end in sorted(intervals):
        if end < start:
            raise ValueError(f"an interval ends before it starts: ({start!r}, {end!r})")
        if merged and not merged[-1][1] < start:
            if merged[-1][1] < end:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
