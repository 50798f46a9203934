"""Reading a delivery: its body with a cap, as a JSON object within the limits, and the domain's readers
(postmortem.incident.payload) with their MalformedPayload answered as 422, so the sender learns which
field to fix.

The limits are the API's (postmortem.api.limits): one reader with a cap, one depth scan, one walk over
the text, for webhooks and API bodies alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request

from postmortem.api.limits import InputRejected, check_depth, declared_length, load_json, read_capped
from postmortem.config import JSON_DEPTH_CEILING, LimitsSettings
from postmortem.incident.payload import MalformedPayload
from postmortem.incident.payload import obj as obj
from postmortem.incident.payload import objs as objs
from postmortem.incident.payload import text as text
from postmortem.webhooks.errors import WebhookRejected


async def read_body(request: Request, limits: LimitsSettings, cap: str = "webhook_max_bytes") -> bytes:
    """The delivery's raw bytes (signatures are over them), read from the stream with the cap the
    LimitsSettings field `cap` sets: 413 before reading when Content-Length says more, and as soon as
    the stream passes it, so an oversized body is never held whole. Its depth is checked here too
    (400), before anything parses it."""
    try:
        body = await read_capped(
            request.stream(),
            getattr(limits, cap),
            LimitsSettings.variable(cap),
            declared_length(request.headers.get("content-length")),
        )
        check_depth(body.decode("utf-8", "replace"), limits.json_max_depth)  # bad UTF-8: 400 when parsed
    except InputRejected as exc:
        raise WebhookRejected(exc.status_code, exc.message) from None
    return body


def parse_json_object(body: bytes, max_depth: int = JSON_DEPTH_CEILING) -> dict[str, Any]:
    """The body as a JSON object: 400 for empty, bad UTF-8, too deep (`read_body` applied the setting;
    this is the ceiling), not JSON or not an object; 422 for text no field may hold (NUL, lone surrogates)."""
    if not body.strip():
        raise WebhookRejected(400, "empty request body")
    try:
        data = load_json(body, max_depth)
    except InputRejected as exc:
        raise WebhookRejected(exc.status_code, exc.message) from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, "request body must be a JSON object")
    return data


@contextmanager
def unreadable_as_422() -> Iterator[None]:
    """A field the domain cannot read is the sender's mistake: 422 with the domain's words."""
    try:
        yield
    except MalformedPayload as exc:
        raise WebhookRejected(422, str(exc)) from exc
