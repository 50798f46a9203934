"""Reading a delivery: its body as a JSON object, and the domain's readers (postmortem.incident.payload)
with their MalformedPayload answered as 422, so the sender learns which field to fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from postmortem.incident.payload import MalformedPayload
from postmortem.incident.payload import obj as obj
from postmortem.incident.payload import objs as objs
from postmortem.incident.payload import text as text
from postmortem.webhooks.errors import WebhookRejected


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise WebhookRejected(400, "empty request body")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookRejected(400, f"request body is not valid JSON: {exc}") from exc
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
