"""A Jira Service Management Operations alert as our Incident, from the Ops REST API
(`GET /jsm/ops/api/{cloudId}/v1/alerts/{id}` → `AlertResponse`): ISO times, `ackTime`/`closeTime`
themselves rather than Opsgenie's durations, `owner` a display name. The webhook's body is
Opsgenie's alert-action JSON and is read by postmortem.incident.opsgenie."""

from __future__ import annotations

from typing import Any

from postmortem.evidence.timeline import parse_time
from postmortem.incident.opsgenie import FLAG_TAGS, names
from postmortem.incident.payload import require_text, text
from postmortem.incident.severity import opsgenie_severity
from postmortem.models import Incident, Person, Ref, Source

CLOSED = {"closed", "resolved"}


def incident_from_jsm_alert(alert: dict[str, Any]) -> Incident:
    """An `AlertResponse`; resolved at its `closeTime` once its status is closed (or resolved)."""
    alert_id = require_text(alert, "id", "alert")
    tags = names(alert.get("tags"))
    tag_set = {tag.lower() for tag in tags}
    owner = text(alert.get("owner"))
    entity = text(alert.get("entity"))
    priority = alert.get("priority")
    return Incident(
        source=Source.JSM,
        id=alert_id,
        number=text(alert.get("tinyId")),
        title=text(alert.get("message")) or f"JSM alert {alert_id}",
        services=[Ref(name=entity)] if entity else [],
        severity=opsgenie_severity(priority if isinstance(priority, (int, str)) else None),
        priority=text(priority),
        created_at=parse_time(alert.get("createdAt")),
        acknowledged_at=parse_time(alert.get("ackTime")),
        resolved_at=parse_time(alert.get("closeTime")) if alert.get("status") in CLOSED else None,
        responders=[Person(email=owner) if "@" in owner else Person(name=owner)] if owner else [],
        tags=tags,
        raw={"alert": alert},
        **{flag: bool(tag_set & tagged) for flag, tagged in FLAG_TAGS.items()},
    )
