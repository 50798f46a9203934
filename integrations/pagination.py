"""One page of a listing and where the next one starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """`items` in the order the source gave them; `next_cursor` is None on the last page.

    The cursor is always a string, whatever the source uses: PagerDuty's numeric offset, Opsgenie's
    offset string, Slack's `next_cursor`. Callers store it and hand it back unchanged.
    """

    items: list[T]
    next_cursor: str | None
