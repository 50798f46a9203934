"""Helpers the integration tests share: collect every page of a paginated call, catch an UpstreamError."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.pagination import Page

Fetch = Callable[[str | None], Awaitable[Page[dict[str, Any]]]]


async def collect(fetch: Fetch) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Every item over all pages, and the cursor each page handed on (None on the last)."""
    items: list[dict[str, Any]] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        items += page.items
        cursors.append(page.next_cursor)
        if page.next_cursor is None:
            return items, cursors
        cursor = page.next_cursor


async def failure(call: Awaitable[Any]) -> UpstreamError:
    """The UpstreamError `call` raises (the test fails if it raises nothing, or something else)."""
    with pytest.raises(UpstreamError) as caught:
        await call
    return caught.value
