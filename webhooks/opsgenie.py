"""Opsgenie's outgoing-webhook integration: `Close` starts the post-mortem.

Opsgenie does not sign deliveries, so the integration sends a shared token (a custom header
`X-Postmortem-Token`, or `?token=` in the URL). Its alert timestamps mix units: `createdAt` is in
milliseconds while `updatedAt`/`insertedAt` are in nanoseconds.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

from postmortem.incident.severity import opsgenie_severity
from postmortem.models import EventKind, Incident, IncidentEvent, Person, Ref, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.payload import epoch_datetime, obj, require_text, text

TOKEN_HEADER = "X-Postmortem-Token"
CLOSE = "Close"
FLAG_TAGS = {
    "customer_impact": {"customer-impact", "customer_impact", "customer-facing"},
    "data_loss": {"data-loss", "data_loss"},
    "security": {"security", "security-incident"},
}


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


def _names(value: Any) -> list[str]:
    """Opsgenie lists teams/recipients as strings or as {name|id} objects depending on the action."""
    names = []
    for item in value if isinstance(value, list) else []:
        name = text(item) if not isinstance(item, dict) else text(item.get("name")) or text(item.get("id"))
        if name:
            names.append(name)
    return names


def parse_opsgenie(data: dict[str, Any]) -> IncidentEvent | Ignored:
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
    created_at = epoch_datetime(alert.get("createdAt"), "alert.createdAt", unit="ms")
    closed_at = epoch_datetime(alert.get("updatedAt"), "alert.updatedAt", unit="ns")
    tags = _names(alert.get("tags"))
    tag_set = {tag.lower() for tag in tags}
    flags = {flag: bool(tag_set & names) for flag, names in FLAG_TAGS.items()}
    people = [text(alert.get("username")), text(alert.get("owner")), *_names(alert.get("recipients"))]
    responders: list[Person] = []
    for person in people:
        if person and all(existing.label != person for existing in responders):
            responders.append(Person(name=None if "@" in person else person, email=person if "@" in person else None))
    entity = text(alert.get("entity"))
    priority = alert.get("priority")
    incident = Incident(
        source=Source.OPSGENIE,
        id=alert_id,
        number=text(alert.get("tinyId")),
        title=text(alert.get("message")) or f"Opsgenie alert {alert_id}",
        services=[Ref(name=entity)] if entity else [],
        teams=[Ref(name=name) for name in _names(alert.get("teams"))],
        severity=opsgenie_severity(priority if isinstance(priority, (int, str)) else None),
        priority=text(priority),
        created_at=created_at,
        resolved_at=closed_at,
        responders=responders,
        resolved_by=responders[0] if text(alert.get("username")) else None,
        tags=tags,
        raw=data,
        **flags,
    )
    return IncidentEvent(
        source=Source.OPSGENIE,
        event_id=f"{alert_id}:{text(alert.get('updatedAt')) or ''}",
        event_type=action,
        kind=EventKind.RESOLVED,
        occurred_at=closed_at,
        incident=incident,
    )


def incident_from_alert_api(alert: dict[str, Any]) -> Incident:
    """An alert as the Alert API returns it (GET /v2/alerts/{id}): ISO times, `report` in ms."""
    from postmortem.evidence.timeline import parse_time

    alert_id = require_text(alert, "id", "alert")
    created = parse_time(alert.get("createdAt"))
    report = obj(alert.get("report"))
    close_ms = report.get("closeTime")
    closed = created + timedelta(milliseconds=close_ms) if created and isinstance(close_ms, int) else None
    ack_ms = report.get("ackTime")
    people = [text(report.get("acknowledgedBy")), text(report.get("closedBy")), text(alert.get("owner"))]
    responders: list[Person] = []
    for person in people:
        if person and all(existing.label != person for existing in responders):
            responders.append(Person(email=person) if "@" in person else Person(name=person))
    entity = text(alert.get("entity"))
    return Incident(
        source=Source.OPSGENIE,
        id=alert_id,
        number=text(alert.get("tinyId")),
        title=text(alert.get("message")) or f"Opsgenie alert {alert_id}",
        services=[Ref(name=entity)] if entity else [],
        severity=opsgenie_severity(alert.get("priority") if isinstance(alert.get("priority"), (int, str)) else None),
        priority=text(alert.get("priority")),
        created_at=created,
        acknowledged_at=created + timedelta(milliseconds=ack_ms) if created and isinstance(ack_ms, int) else None,
        resolved_at=closed if alert.get("status") == "closed" else None,
        responders=responders,
        tags=_names(alert.get("tags")),
        raw={"alert": alert},
    )
