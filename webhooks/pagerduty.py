"""PagerDuty webhooks, V3 (`event`) and legacy V2 (`messages[]`), normalised to IncidentEvents.

This module reads the envelope (which event, whether it starts a post-mortem); the incident inside
is read by postmortem.incident.pagerduty, as the link step reads the REST API's.
"""

from __future__ import annotations

from typing import Any

from postmortem.incident.pagerduty import incident_from_v2, incident_from_v3
from postmortem.incident.payload import iso_datetime, obj, require_text, text
from postmortem.models import EventKind, Incident, IncidentEvent, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.payload import unreadable_as_422

V3_RESOLVED = "incident.resolved"
V2_RESOLVED = "incident.resolve"


def parse_pagerduty(data: dict[str, Any]) -> list[IncidentEvent | Ignored]:
    with unreadable_as_422():
        return _parse(data)


def _parse(data: dict[str, Any]) -> list[IncidentEvent | Ignored]:
    if "event" in data:
        return [_parse_v3(obj(data["event"]))]
    if "messages" in data:
        messages = data["messages"]
        if not isinstance(messages, list) or not messages:
            raise WebhookRejected(422, "messages must be a non-empty list of V2 webhook messages")
        return [_parse_v2(obj(message), index) for index, message in enumerate(messages)]
    raise WebhookRejected(422, "not a PagerDuty webhook: expected an 'event' (V3) or 'messages' (V2) field")


def _parse_v3(event: dict[str, Any]) -> IncidentEvent | Ignored:
    if not event:
        raise WebhookRejected(422, "event must be a JSON object")
    event_type = require_text(event, "event_type", "event")
    event_id = text(event.get("id"))
    occurred_at = iso_datetime(event.get("occurred_at"), "event.occurred_at")
    data = obj(event.get("data"))
    if event_type != V3_RESOLVED:
        return Ignored(event_type=event_type, event_id=event_id, reason=_not_yet(event_type))
    if data.get("type") != "incident":
        raise WebhookRejected(422, f"event.data.type must be 'incident' for {event_type}")
    return _resolved(event_id, event_type, occurred_at, incident_from_v3(event))


def _parse_v2(message: dict[str, Any], index: int) -> IncidentEvent | Ignored:
    where = f"messages[{index}]"
    if not message:
        raise WebhookRejected(422, f"{where} must be a JSON object")
    event_type = require_text(message, "event", where)
    event_id = text(message.get("id"))
    if event_type != V2_RESOLVED:
        return Ignored(event_type=event_type, event_id=event_id, reason=_not_yet(event_type))
    incident = incident_from_v2(message, where)
    return _resolved(event_id, event_type, incident.resolved_at, incident)


def _resolved(event_id: str | None, event_type: str, occurred_at: Any, incident: Incident) -> IncidentEvent:
    return IncidentEvent(
        source=Source.PAGERDUTY,
        event_id=event_id,
        event_type=event_type,
        kind=EventKind.RESOLVED,
        occurred_at=occurred_at,
        incident=incident,
    )


def _not_yet(event_type: str) -> str:
    return f"event type {event_type!r} is acknowledged but does not start a post-mortem"
