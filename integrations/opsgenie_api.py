"""Opsgenie Alert API v2, read side: an alert, its logs and notes, as raw JSON."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from postmortem.integrations.http_errors import expect_key, json_object, path_segment, request
from postmortem.integrations.pagination import Page

SERVICE = "Opsgenie"
MAX_PAGE_SIZE = 100


class OpsgenieClient:
    """Reads alerts by id through `http`; every failure is an UpstreamError."""

    def __init__(self, base_url: str, api_key: str, http: httpx.AsyncClient, page_size: int = 100) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        self._base = base_url.rstrip("/")
        self._http = http
        self._headers = {"Authorization": f"GenieKey {api_key}", "Accept": "application/json"}
        self.page_size = page_size

    def _alert_url(self, alert_id: str, tail: str = "") -> str:
        return f"{self._base}/v2/alerts/{path_segment(alert_id)}{tail}"

    async def _get(self, url: str, params: dict[str, str]) -> tuple[httpx.Response, dict[str, Any]]:
        response = await request(self._http, SERVICE, "GET", url, params=params, headers=self._headers)
        return response, json_object(response, SERVICE)

    async def get_alert(self, alert_id: str) -> dict[str, Any]:
        """GET /v2/alerts/{id}?identifierType=id → "data"."""
        response, body = await self._get(self._alert_url(alert_id), {"identifierType": "id"})
        return expect_key(body, "data", dict, response, SERVICE)

    async def logs_page(self, alert_id: str, cursor: str | None) -> Page[dict[str, Any]]:
        """One page of the alert's log, oldest first; the cursor is the last item's `offset` string."""
        return await self._paged(self._alert_url(alert_id, "/logs"), cursor)

    async def notes_page(self, alert_id: str, cursor: str | None) -> Page[dict[str, Any]]:
        """One page of the alert's notes, oldest first; same cursor as the logs."""
        return await self._paged(self._alert_url(alert_id, "/notes"), cursor)

    async def _paged(self, url: str, cursor: str | None) -> Page[dict[str, Any]]:
        params = {"identifierType": "id", "limit": str(self.page_size), "order": "asc", "direction": "next"}
        if cursor:
            params["offset"] = cursor
        response, body = await self._get(url, params)
        items = expect_key(body, "data", list, response, SERVICE)
        paging = body.get("paging")
        paging = paging if isinstance(paging, dict) else {}
        next_url = paging.get("next") or response.headers.get("x-paging-next")
        if not items or (len(items) < self.page_size and not next_url):
            return Page(items=items, next_cursor=None)
        last = items[-1].get("offset") if isinstance(items[-1], dict) else None
        next_cursor = last if isinstance(last, str) and last else _offset_of(next_url)
        if next_cursor is None or next_cursor == cursor:  # no way forward, or no progress: stop here
            return Page(items=items, next_cursor=None)
        return Page(items=items, next_cursor=next_cursor)


def _offset_of(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("offset")
    return values[0] if values and values[0] else None
