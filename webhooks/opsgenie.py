"""Opsgenie's outgoing-webhook integration: `Close` starts the post-mortem.

Opsgenie does not sign deliveries, so the integration sends a shared token (a custom header
`X-Postmortem-Token`, or `?token=` in the URL). The alert itself is read by
postmortem.incident.opsgenie, as the link step reads the Alert API's.
"""

from __future__ import annotations

import hmac
from typing import Any

from postmortem.incident.opsgenie import incident_from_webhook
from postmortem.incident.payload import obj, require_text, text
from postmortem.models import EventKind, IncidentEvent, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.payload import unreadable_as_422

TOKEN_HEADER = "X-Postmortem-Token"
CLOSE = "Close"


def verify_token(
    presented: str | None,
    expected: str | None,
    *,
    source: str = "Opsgenie",
    setting: str = "POSTMORTEM_OPSGENIE_WEBHOOK_TOKEN",
) -> None:
    """A shared token, for senders that cannot sign (Opsgenie, Jira automation)."""
    if not expected:
        raise WebhookRejected(503, f"{source} webhooks are not configured: set {setting}")
    if not presented:
        raise WebhookRejected(401, f"missing token: send the {TOKEN_HEADER} header or a ?token= parameter")
    if not hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8")):
        raise WebhookRejected(401, f"invalid {source} webhook token")


def parse_opsgenie(data: dict[str, Any], source: Source = Source.OPSGENIE) -> IncidentEvent | Ignored:
    """An alert-action delivery; `source` is who sent it (JSM Operations sends the same JSON)."""
    with unreadable_as_422():
        return _parse(data, source)


def _parse(data: dict[str, Any], source: Source) -> IncidentEvent | Ignored:
    action = require_text(data, "action", "body")
    alert = obj(data.get("alert"))
    if not alert:
        raise WebhookRejected(422, "body.alert is missing or not an object")
    alert_id = require_text(alert, "alertId", "alert")
    if action != CLOSE:
        return Ignored(
            event_type=action,
            event_id=alert_id,
            reason=f"action {action!r} is acknowledged but does not start a post-mortem",
        )
    incident = incident_from_webhook(data, source)
    return IncidentEvent(
        source=source,
        event_id=f"{alert_id}:{text(alert.get('updatedAt')) or ''}",
        event_type=action,
        kind=EventKind.RESOLVED,
        occurred_at=incident.resolved_at,
        incident=incident,
    )
