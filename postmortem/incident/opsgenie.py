"""An Opsgenie alert as our Incident: from the outgoing-webhook body (alert-action JSON, also what Jira
Service Management sends) or from the Alert API (GET /v2/alerts/{id}). The webhook and the link step
both read alerts here.

Opsgenie's timestamps mix units: the webhook's `createdAt` is in milliseconds while `updatedAt` is in
nanoseconds; the Alert API gives ISO times and `report` durations in milliseconds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from postmortem.evidence.timeline import parse_time
from postmortem.incident.payload import epoch_datetime, obj, require_text, text
from postmortem.incident.severity import opsgenie_severity
from postmortem.models import Incident, Person, Ref, Source

FLAG_TAGS = {
    "customer_impact": {"customer-impact", "customer_impact", "customer-facing"},
    "data_loss": {"data-loss", "data_loss"},
    "security": {"security", "security-incident"},
}


def names(value: Any) -> list[str]:
    """Opsgenie lists teams/recipients as strings or as {name|id} objects depending on the action."""
    found = []
    for item in value if isinstance(value, list) else []:
        name = text(item) if not isinstance(item, dict) else text(item.get("name")) or text(item.get("id"))
        if name:
            found.append(name)
    return found


SOURCE_NAMES = {Source.OPSGENIE: "Opsgenie", Source.JSM: "JSM"}


def incident_from_webhook(data: dict[str, Any], source: Source = Source.OPSGENIE) -> Incident:
    """The alert of a webhook body (`{"action", "alert": {...}}`), closed at its `updatedAt`; `raw` is the body.

    Jira Service Management Operations sends the same alert-action JSON: `source` says whose it is."""
    alert = obj(data.get("alert"))
    alert_id = require_text(alert, "alertId", "alert")
    created_at = epoch_datetime(alert.get("createdAt"), "alert.createdAt", unit="ms")
    closed_at = epoch_datetime(alert.get("updatedAt"), "alert.updatedAt", unit="ns")
    tags = names(alert.get("tags"))
    tag_set = {tag.lower() for tag in tags}
    flags = {flag: bool(tag_set & tagged) for flag, tagged in FLAG_TAGS.items()}
    people = [text(alert.get("username")), text(alert.get("owner")), *names(alert.get("recipients"))]
    responders: list[Person] = []
    for person in people:
        if person and all(existing.label != person for existing in responders):
            responders.append(Person(name=None if "@" in person else person, email=person if "@" in person else None))
    entity = text(alert.get("entity"))
    priority = alert.get("priority")
    return Incident(
        source=source,
        id=alert_id,
        number=text(alert.get("tinyId")),
        title=text(alert.get("message")) or f"{SOURCE_NAMES.get(source, source.value)} alert {alert_id}",
        services=[Ref(name=entity)] if entity else [],
        teams=[Ref(name=name) for name in names(alert.get("teams"))],
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


def incident_from_alert_api(alert: dict[str, Any]) -> Incident:
    """An alert as the Alert API returns it (GET /v2/alerts/{id}): ISO times, `report` in ms."""
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
        tags=names(alert.get("tags")),
        raw={"alert": alert},
    )
