"""Jira Service Management Operations REST API, read side: an alert, its logs and its notes, as raw JSON.

Where Opsgenie's Alert API v2 went (Opsgenie's REST APIs stop answering on 2027-04-05). Atlassian's
OpenAPI document (developer.atlassian.com/cloud/jira/service-desk-ops/swagger.v3.json):

* `GET {base}/jsm/ops/api/{cloudId}/v1/alerts/{id}` → `AlertResponse` (the alert itself, no envelope);
* `GET …/alerts/{id}/logs` → `{"values": [AlertLog{logTime, logType, log, owner}], "links": {"next"}}`;
* `GET …/alerts/{id}/notes` → `{"values": [AlertNote{id, createdAt, updatedAt, note, owner}], "links": {"next"}}`;
* basic auth: an Atlassian account's email and an API token;
* errors: 401 `{"code", "message"}`, 403/404 `{"errors": [{"title", "code"}]}`.

Paging follows `links.next`, a link relative to the API (`/v1/alerts/{id}/notes?after=1492000072838`).
The spec pages these two lists with `size` and an opaque `after` key; other JSM lists use `offset`
and `size`. Whichever the link carries is sent again, on our own URL: a link from a response is never
called, so only the operator's configured base URL is.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from postmortem.integrations.http_errors import UpstreamError, expect_key, json_object, path_segment, request
from postmortem.integrations.pagination import Page

SERVICE = "JSM Operations"
MAX_PAGE_SIZE = 100
PAGE_PARAMS = ("after", "offset", "size")  # what a `links.next` may carry that we send again


def basic_auth(email: str, api_token: str) -> str:
    """The `Authorization` value of Atlassian's basic auth with an API token (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{email}:{api_token}".encode()).decode("ascii")


class JsmOpsClient:
    """Reads alerts of one JSM site (`cloud_id`) through `http`; every failure is an UpstreamError."""

    def __init__(
        self,
        base_url: str,
        cloud_id: str,
        email: str,
        api_token: str,
        http: httpx.AsyncClient,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
        self._api = f"{base_url.rstrip('/')}/jsm/ops/api/{path_segment(cloud_id)}/v1"
        self._http = http
        self._headers = {"Authorization": basic_auth(email, api_token), "Accept": "application/json"}
        self.page_size = page_size

    def _alert_url(self, alert_id: str, tail: str = "") -> str:
        return f"{self._api}/alerts/{path_segment(alert_id)}{tail}"

    async def _get(self, url: str, params: dict[str, str] | None = None) -> tuple[httpx.Response, dict[str, Any]]:
        response = await request(self._http, SERVICE, "GET", url, params=params, headers=self._headers)
        return response, json_object(response, SERVICE)

    async def get_alert(self, alert_id: str) -> dict[str, Any]:
        """GET …/v1/alerts/{id}: the alert (an `AlertResponse` with at least its `id`)."""
        response, body = await self._get(self._alert_url(alert_id))
        expect_key(body, "id", str, response, SERVICE)
        return body

    async def logs_page(self, alert_id: str, cursor: str | None) -> Page[dict[str, Any]]:
        """One page of the alert's activity log; the cursor is the paging part of `links.next`."""
        return await self._paged(self._alert_url(alert_id, "/logs"), cursor)

    async def notes_page(self, alert_id: str, cursor: str | None) -> Page[dict[str, Any]]:
        """One page of the alert's notes; same cursor as the logs."""
        return await self._paged(self._alert_url(alert_id, "/notes"), cursor)

    async def _paged(self, url: str, cursor: str | None) -> Page[dict[str, Any]]:
        params = {"size": str(self.page_size)}
        if cursor:
            params.update(parse_qsl(cursor))
        response, body = await self._get(url, params)
        items = [item for item in expect_key(body, "values", list, response, SERVICE) if isinstance(item, dict)]
        links = body.get("links")
        next_link = links.get("next") if isinstance(links, dict) else None
        next_cursor = paging_of(next_link if isinstance(next_link, str) else None)
        if not items or next_cursor is None or next_cursor == cursor:  # the end, or no progress: stop here
            return Page(items=items, next_cursor=None)
        return Page(items=items, next_cursor=next_cursor)


def paging_of(link: str | None) -> str | None:
    """The paging parameters of a `links.next` (`after`, `offset`, `size`) as a query string, or None
    when the link names no position to go on from (then there is no next page we could ask for)."""
    if not link:
        return None
    try:
        pairs = parse_qsl(urlsplit(link).query, keep_blank_values=False)
    except ValueError:
        return None
    kept = [(name, value) for name, value in pairs if name in PAGE_PARAMS]
    if not any(name in ("after", "offset") for name, _ in kept):
        return None
    return urlencode(kept)


__all__ = ["SERVICE", "JsmOpsClient", "UpstreamError", "basic_auth", "paging_of"]
