"""A loopback Slack Web API: conversations.history (cursor paging) and chat.postMessage.

Shapes from slackapi/slack-api-specs (web-api/slack_web_openapi_v2.json) and the saved
chat.postMessage fixtures: HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": "<code>"}`,
HTTP 429 with `Retry-After` for real rate limiting, history newest first with
`has_more` and `response_metadata.next_cursor` (base64 of "next_ts:<ts digits>", like Slack's).

Outages (`Switchable`, tests/fakes/serve.py), until `heal()`:
* `fail_with("channel_not_found")`, `fail_with("not_in_channel")`, any other error code: HTTP 200
  `{"ok": false, "error": "<code>"}`, as chat.postMessage documents them (docs.slack.dev,
  chat.postMessage "Errors": channel_not_found "Value passed for channel was invalid.",
  not_in_channel "Cannot post user messages to a channel they are not in.");
* `fail_with("ratelimited")`: the same shape with `Retry-After: <retry_after>` (Slack's "ratelimited":
  "Refer to the Retry-After header for when to retry the request");
* `fail_with(429)`: HTTP 429 with `Retry-After`, Slack's real rate limiting; `fail_with(503)`: a 5xx;
* `path="/api/chat.postMessage"` breaks posting only (history still answers).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app, reset_fake
from tests.fixtures import fixture_json

_POSTED = fixture_json("slack_chat_postMessage_response_ok.json")
MAX_LIMIT = 999
DEFAULT_LIMIT = 100


@dataclass
class FakeSlack(Switchable):
    token: str = "xoxb-fake-token"
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # messages, any order
    posted: list[dict[str, Any]] = field(default_factory=list)  # chat.postMessage payloads received
    requests: list[Recorded] = field(default_factory=list)
    # an int answers that HTTP status; a str answers 200 {"ok": false, "error": <str>}
    fail_next: list[int | str] = field(default_factory=list)
    retry_after: str | None = "1"  # Retry-After on a 429
    delay_seconds: float = 0.0
    epoch: int = 0  # moved on by reset(): stale delayed requests stand down
    empty_final_cursor: bool = True  # last page: next_cursor "" (True) or no response_metadata (False)
    outage: Outage | None = None  # fail_with(...) / heal(): see the module docstring
    refused: int = 0  # requests the outage answered

    def reset(self) -> None:
        """Back to defaults, in place: one server can serve many tests."""
        reset_fake(self)


def _ts(moment: datetime, index: int) -> str:
    return f"{int(moment.timestamp())}.{index % 1_000_000:06d}"


def make_messages(count: int, start: datetime, user: str = "U012AB3CDE") -> list[dict[str, Any]]:
    """`count` plain user messages, oldest first, one a minute from `start`, unique `ts`."""
    return [
        {
            "type": "message",
            "user": user,
            "text": f"Update {index + 1}: looking at the dashboards",
            "ts": _ts(start + timedelta(minutes=index), index),
        }
        for index in range(count)
    ]


def _cursor_for(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts.replace('.', '')}".encode()).decode()


def _ts_of_cursor(cursor: str) -> Decimal | None:
    try:
        text = base64.b64decode(cursor, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not text.startswith("next_ts:") or not text[8:].isdigit() or len(text) < 15:
        return None
    digits = text[8:]
    return Decimal(f"{digits[:-6]}.{digits[-6:]}")


def _error(code: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"ok": False, "error": code}, headers=headers)


async def _form(request: Request) -> dict[str, Any]:
    """Arguments from the query string, a form body or a JSON body, as Slack accepts them."""
    values: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if request.method == "POST":
        if content_type.startswith("application/json"):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                return {"__invalid__": "invalid_json"}
            if not isinstance(body, dict):
                return {"__invalid__": "json_not_object"}
            values.update(body)
        elif content_type.startswith("application/x-www-form-urlencoded"):
            values.update(dict(await request.form()))
    return values


def slack_app(state: FakeSlack) -> FastAPI:
    def failure(kind: int | str) -> Response:
        headers = {"Retry-After": state.retry_after} if state.retry_after else None
        if isinstance(kind, str):
            return _error(kind, headers if kind in ("ratelimited", "rate_limited") else None)
        if kind == 429:
            return Response(status_code=429, headers=headers)
        return Response(status_code=kind, content=b"upstream connect error", media_type="text/plain")

    # No credential check at the door: Slack takes the token from the header or the form (auth_error).
    app = fake_app(state, failure=failure)

    def auth_error(request: Request, args: dict[str, Any]) -> Response | None:
        header = request.headers.get("authorization")
        token = header[7:] if header and header.startswith("Bearer ") else args.get("token")
        if not token:
            return _error("not_authed")
        if token != state.token:
            return _error("invalid_auth")
        return None

    @app.api_route("/api/conversations.history", methods=["GET", "POST"])
    async def history(request: Request) -> Response:
        args = await _form(request)
        if "__invalid__" in args:
            return _error(args["__invalid__"])
        if (refused := auth_error(request, args)) is not None:
            return refused
        channel = args.get("channel")
        if channel not in state.channels:
            return _error("channel_not_found")
        try:
            limit = min(int(args.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
            oldest = Decimal(str(args["oldest"])) if "oldest" in args else None
            latest = Decimal(str(args["latest"])) if "latest" in args else None
        except (ValueError, InvalidOperation):
            return _error("invalid_arguments")
        inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
        messages = sorted(state.channels[channel], key=lambda m: Decimal(m["ts"]), reverse=True)
        if oldest is not None:
            messages = [m for m in messages if Decimal(m["ts"]) > oldest or (inclusive and Decimal(m["ts"]) == oldest)]
        if latest is not None:
            messages = [m for m in messages if Decimal(m["ts"]) < latest or (inclusive and Decimal(m["ts"]) == latest)]
        cursor = args.get("cursor")
        if cursor:
            start = _ts_of_cursor(cursor)
            if start is None:
                return _error("invalid_cursor")
            messages = [m for m in messages if Decimal(m["ts"]) <= start]
        if str(args.get("include_all_metadata", "")).lower() not in ("1", "true"):
            messages = [{k: v for k, v in m.items() if k != "metadata"} for m in messages]  # as Slack: asked for
        chunk, rest = messages[: max(limit, 1)], messages[max(limit, 1) :]
        body: dict[str, Any] = {
            "ok": True,
            "messages": chunk,
            "has_more": bool(rest),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if rest:
            body["response_metadata"] = {"next_cursor": _cursor_for(rest[0]["ts"])}
        elif state.empty_final_cursor:
            body["response_metadata"] = {"next_cursor": ""}
        return JSONResponse(body)

    @app.post("/api/chat.postMessage")
    async def post_message(request: Request) -> Response:
        args = await _form(request)
        if "__invalid__" in args:
            return _error(args["__invalid__"])
        if (refused := auth_error(request, args)) is not None:
            return refused
        channel = args.get("channel")
        if channel not in state.channels:
            return _error("channel_not_found")
        if not args.get("text") and not args.get("blocks"):
            return _error("no_text")
        state.posted.append(args)
        now = datetime.now(UTC)
        ts = _ts(now, len(state.posted))
        message = {key: value for key, value in _POSTED["message"].items() if key != "attachments"}
        message.update(text=args.get("text", ""), ts=ts)
        if args.get("blocks"):
            message["blocks"] = args["blocks"]
        if metadata := args.get("metadata"):
            # a JSON body carries an object; a form body carries its JSON text (Slack takes both)
            message["metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
        state.channels[channel].append(message)
        return JSONResponse({**_POSTED, "channel": channel, "ts": ts, "message": message})

    return app
