"""PagerDuty REST API v2, read side: an incident, its log entries, alerts and notes, as raw JSON."""

from __future__ import annotations

from typing import Any

import httpx

from postmortem.integrations.http_errors import expect_key, json_object, path_segment, request
from postmortem.integrations.pagination import Page

SERVICE = "PagerDuty"
ACCEPT = "application/vnd.pagerduty+json;version=2"
# Classic pagination refuses offset + limit above this (HTTP 400): records past it cannot be listed.
MAX_RECORDS = 10_000
MAX_PAGE_SIZE = 100


class PagerDutyClient:
    """Reads one account's incidents through `http`; every failure is an UpstreamError."""

    def __init__(self, base_url: str, token: str, http: httpx.AsyncClient, page_size: int = 100) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        self._base = base_url.rstrip("/")
        self._http = http
        self._headers = {"Authorization": f"Token token={token}", "Accept": ACCEPT}
        self.page_size = page_size

    def _incident_url(self, incident_id: str, tail: str = "") -> str:
        return f"{self._base}/incidents/{path_segment(incident_id)}{tail}"

    async def _get(self, url: str, params: Any = None) -> tuple[httpx.Response, dict[str, Any]]:
        response = await request(self._http, SERVICE, "GET", url, params=params, headers=self._headers)
        return response, json_object(response, SERVICE)

    async def get_incident(self, incident_id: str) -> dict[str, Any]:
        """GET /incidents/{id} → the "incident" object."""
        response, body = await self._get(self._incident_url(incident_id))
        return expect_key(body, "incident", dict, response, SERVICE)

    async def log_entries_page(self, incident_id: str, cursor: str | None) -> Page[dict[str, Any]]:
        """One page of GET /incidents/{id}/log_entries (with channels included), newest entry first.

        The cursor is the offset as a string. PagerDuty refuses `offset + limit > 10000` with a 400,
        so the page that would cross that line asks for `limit = 10000 - offset` instead, and a cursor
        at 10000 gives an empty last page without asking: an incident with more than 10,000 log
        entries yields its first 10,000 only (PagerDuty offers no way past that for this endpoint).
        """
        return await self._paged(
            self._incident_url(incident_id, "/log_entries"), "log_entries", cursor, {"include[]": "channels"}
        )

    async def alerts_page(self, incident_id: str, cursor: str | None) -> Page[dict[str, Any]]:
        """One page of GET /incidents/{id}/alerts; same offset cursor and 10,000 cap as log entries."""
        return await self._paged(self._incident_url(incident_id, "/alerts"), "alerts", cursor, {})

    async def notes(self, incident_id: str) -> list[dict[str, Any]]:
        """GET /incidents/{id}/notes — all of them: this endpoint is not paginated."""
        response, body = await self._get(self._incident_url(incident_id, "/notes"))
        return expect_key(body, "notes", list, response, SERVICE)

    async def _paged(self, url: str, key: str, cursor: str | None, extra: dict[str, str]) -> Page[dict[str, Any]]:
        offset = _offset(cursor)
        limit = min(self.page_size, MAX_RECORDS - offset)
        if limit <= 0:
            return Page(items=[], next_cursor=None)
        params = {"limit": str(limit), "offset": str(offset), **extra}
        response, body = await self._get(url, params)
        items = expect_key(body, key, list, response, SERVICE)
        more = body.get("more") is True
        next_offset = offset + len(items)
        # `more` with an empty page would ask for the same page forever: treat it as the end.
        return Page(items=items, next_cursor=str(next_offset) if more and items else None)


def _offset(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    try:
        offset = int(cursor)
    except ValueError:
        raise ValueError(f"not a PagerDuty offset cursor: {cursor!r}") from None
    if offset < 0:
        raise ValueError(f"not a PagerDuty offset cursor: {cursor!r}")
    return offset
