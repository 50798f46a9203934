"""Slack Web API: a channel's history (for the timeline) and chat.postMessage (for announcements).

Slack answers HTTP 200 to most failures, with `{"ok": false, "error": "<code>"}`: the `ok` flag, not
the status, says whether a call worked. Real rate limiting comes as HTTP 429 with `Retry-After`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from postmortem.integrations.http_errors import (
    UpstreamError,
    expect_key,
    json_object,
    request,
    retry_after_seconds,
    upstream_detail,
)
from postmortem.integrations.pagination import Page

SERVICE = "Slack"
# `ok: false` codes that may pass on their own; every other code needs a person (token, scope, channel…).
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "request_timeout", "service_unavailable", "internal_error", "fatal_error"}
)


class SlackClient:
    def __init__(self, base_url: str, bot_token: str, http: httpx.AsyncClient) -> None:
        self._base = base_url.rstrip("/")
        self._http = http
        self._auth = {"Authorization": f"Bearer {bot_token}"}

    async def conversations_history_page(
        self,
        channel: str,
        cursor: str | None,
        oldest: float | None,
        latest: float | None,
        limit: int = 200,
        include_all_metadata: bool = False,
    ) -> Page[dict[str, Any]]:
        """One page of conversations.history (newest message first, as Slack sends them).

        `oldest`/`latest` are Unix timestamps bounding the window (exclusive, Slack's default).
        """
        params: dict[str, str] = {"channel": channel, "limit": str(limit)}
        if include_all_metadata:
            params["include_all_metadata"] = "true"
        if cursor:
            params["cursor"] = cursor
        if oldest is not None:
            params["oldest"] = _ts(oldest)
        if latest is not None:
            params["latest"] = _ts(latest)
        response = await request(
            self._http, SERVICE, "GET", f"{self._base}/conversations.history", params=params, headers=self._auth
        )
        body = _checked(response)
        messages = expect_key(body, "messages", list, response, SERVICE)
        metadata = body.get("response_metadata")
        next_cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
        if not isinstance(next_cursor, str) or not next_cursor or next_cursor == cursor:
            next_cursor = None
        return Page(items=messages, next_cursor=next_cursor)

    async def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """chat.postMessage; returns Slack's whole answer (`ok`, `channel`, `ts`, `message`).

        `metadata` is Slack's message metadata (`{"event_type": …, "event_payload": {…}}`), by which
        `find_posted` recognises the message later."""
        payload: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            payload["blocks"] = blocks
        if metadata is not None:
            payload["metadata"] = metadata
        response = await request(
            self._http,
            SERVICE,
            "POST",
            f"{self._base}/chat.postMessage",
            content=json.dumps(payload).encode("utf-8"),
            headers={**self._auth, "Content-Type": "application/json; charset=utf-8"},
        )
        return _checked(response)

    async def find_posted(self, channel: str, event_type: str, key: str, oldest: float) -> str | None:
        """The `ts` of a message in `channel` since `oldest` whose metadata is `event_type` with
        `event_payload.key == key`; None when there is none (needs the `channels:history` scope)."""
        cursor: str | None = None
        while True:
            page = await self.conversations_history_page(channel, cursor, oldest, None, include_all_metadata=True)
            for message in page.items:
                metadata = message.get("metadata")
                if not isinstance(metadata, dict) or metadata.get("event_type") != event_type:
                    continue
                payload = metadata.get("event_payload")
                if isinstance(payload, dict) and payload.get("key") == key:
                    ts = message.get("ts")
                    return str(ts) if ts is not None else ""
            if page.next_cursor is None:
                return None
            cursor = page.next_cursor


def _ts(value: float) -> str:
    return f"{value:.6f}"


def _checked(response: httpx.Response) -> dict[str, Any]:
    body = json_object(response, SERVICE)
    if body.get("ok") is True:
        return body
    detail, code = upstream_detail(body)
    code = code or "unknown_error"
    path = response.request.url.raw_path.decode("ascii", "replace").split("?", 1)[0]
    transient = code in TRANSIENT_ERRORS
    raise UpstreamError(
        SERVICE,
        response.status_code,
        f"{SERVICE} answered ok=false: {detail or code} ({response.request.method} {path})",
        retry_after=retry_after_seconds(response.headers) if transient else None,
        permanent=not transient,
        code=code,
    )
