"""Jira Service Management Operations' Webhook integration: the same alert-action JSON as Opsgenie's
(Atlassian, "Alert action data"), so `Close` starts the post-mortem and every other action is
acknowledged.

JSM does not sign deliveries either. The integration's custom headers carry a shared token, as
`Authorization: Bearer <token>` or `X-Postmortem-Token: <token>`; never in the URL, where proxies
and JSM's own integration log would keep it. It is compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any

from postmortem.incident.opsgenie import incident_from_webhook
from postmortem.incident.payload import obj, require_text, text
from postmortem.models import EventKind, IncidentEvent, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.opsgenie import CLOSE, TOKEN_HEADER
from postmortem.webhooks.payload import unreadable_as_422

SETTING = "POSTMORTEM_JSM_WEBHOOK_TOKEN"


def presented_token(authorization: str | None, header_token: str | None) -> str | None:
    """The token the sender presented: `X-Postmortem-Token`, else the bearer credentials."""
    if header_token:
        return header_token
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


def verify_jsm_token(authorization: str | None, header_token: str | None, expected: str | None) -> None:
    """401 without the right token; 503 while none is configured (the sender keeps the delivery)."""
    if not expected:
        raise WebhookRejected(503, f"JSM webhooks are not configured: set {SETTING}")
    presented = presented_token(authorization, header_token)
    if presented is None:
        raise WebhookRejected(401, f"missing token: send `Authorization: Bearer <token>` or the {TOKEN_HEADER} header")
    if not hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8")):
        raise WebhookRejected(401, "invalid JSM webhook token")


def parse_jsm(data: dict[str, Any]) -> IncidentEvent | Ignored:
    with unreadable_as_422():
        return _parse(data)


def _parse(data: dict[str, Any]) -> IncidentEvent | Ignored:
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
    incident = incident_from_webhook(data, Source.JSM)
    return IncidentEvent(
        source=Source.JSM,
        event_id=f"{alert_id}:{text(alert.get('updatedAt')) or ''}",
        event_type=action,
        kind=EventKind.RESOLVED,
        occurred_at=incident.resolved_at,
        incident=incident,
    )
