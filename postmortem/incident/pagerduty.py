"""A PagerDuty incident object as our Incident: from a V3 webhook event, a V2 webhook message, or the
REST API (GET /incidents/{id}, the V2 message's shape). The webhooks and the link step both read
incidents here, so a linked incident looks exactly like one that arrived by webhook.

Real V3 captures lack fields the docs show (`created_at`, `incident_key`, …): everything but the
incident's id and title is optional. Unreadable required fields raise MalformedPayload.
"""

from __future__ import annotations

from typing import Any

from postmortem.incident.payload import MalformedPayload, iso_datetime, obj, objs, require_text, text
from postmortem.incident.severity import pagerduty_severity
from postmortem.models import Incident, Link, Person, Ref, Source


def incident_from_v3(event: dict[str, Any]) -> Incident:
    """The incident of a V3 `incident.*` event (`event.data`), resolved at the event's `occurred_at`."""
    occurred_at = iso_datetime(event.get("occurred_at"), "event.occurred_at")
    data = obj(event.get("data"))
    incident_id = require_text(data, "id", "event.data")
    bridge = obj(data.get("conference_bridge"))
    return _incident(
        data,
        incident_id,
        number=data.get("number"),
        created_at=iso_datetime(data.get("created_at"), "event.data.created_at"),
        resolved_at=occurred_at,
        responders=[*map(_person, objs(data.get("assignees"))), _person(event.get("agent"))],
        resolved_by=_person(event.get("agent")),
        links=[
            _link("PagerDuty incident", data.get("html_url")),
            _link("Conference bridge", bridge.get("conference_url")),
        ],
        raw={"event": event},
    )


def incident_from_v2(message: dict[str, Any], where: str) -> Incident:
    """The incident of a V2 message (`message.incident`), resolved when the message (or its resolve
    log entry) says; `where` names the message in errors ("messages[0]")."""
    data = obj(message.get("incident"))
    if not data:
        raise MalformedPayload(f"{where}.incident is missing")
    incident_id = require_text(data, "id", f"{where}.incident")
    occurred_at = iso_datetime(message.get("created_on"), f"{where}.created_on")
    for entry in objs(message.get("log_entries")):
        if entry.get("type") == "resolve_log_entry":
            occurred_at = occurred_at or iso_datetime(entry.get("created_at"), f"{where}.log_entries.created_at")
    acks = objs(data.get("acknowledgements"))
    ack_times = [iso_datetime(ack.get("at"), f"{where}.incident.acknowledgements.at") for ack in acks]
    references = [
        _link(text(ref.get("summary")) or "External reference", ref.get("external_url"))
        for ref in objs(data.get("external_references"))
    ]
    return _incident(
        data,
        incident_id,
        number=data.get("incident_number"),
        created_at=iso_datetime(data.get("created_at"), f"{where}.incident.created_at"),
        acknowledged_at=min((t for t in ack_times if t), default=None),
        resolved_at=occurred_at,
        responders=[
            *(_person(obj(a).get("assignee")) for a in objs(data.get("assignments"))),
            *(_person(ack.get("acknowledger")) for ack in acks),
            _person(data.get("last_status_change_by")),
        ],
        resolved_by=_person(data.get("last_status_change_by")),
        links=[_link("PagerDuty incident", data.get("html_url")), *references],
        raw={"message": message},
    )


def incident_from_rest(data: dict[str, Any]) -> Incident:
    """An incident as the REST API returns it (GET /incidents/{id}): the V2 webhook's shape."""
    moment = data.get("resolved_at") or data.get("last_status_change_at")
    incident = incident_from_v2({"incident": data, "created_on": moment}, "messages[0]")
    if data.get("status") != "resolved":
        return incident.model_copy(update={"resolved_at": None, "raw": {"incident": data}})
    return incident.model_copy(update={"raw": {"incident": data}})


def _ref(value: Any) -> Ref | None:
    value = obj(value)
    name = text(value.get("summary")) or text(value.get("name"))
    if not name:
        return None
    return Ref(id=text(value.get("id")), name=name)


def _person(value: Any) -> Person | None:
    value = obj(value)
    if not value or value.get("type") not in (None, "user_reference", "user"):
        return None
    name = text(value.get("summary")) or text(value.get("name"))
    email = text(value.get("email"))
    if not (name or email):
        return None
    return Person(id=text(value.get("id")), name=name, email=email)


def _link(title: str, url: Any) -> Link | None:
    url = text(url)
    if url and url.startswith(("https://", "http://")):
        return Link(title=title, url=url)
    return None


def _unique_people(people: list[Person | None]) -> list[Person]:
    seen: set[str] = set()
    result = []
    for person in people:
        if person and person.label not in seen:
            seen.add(person.label)
            result.append(person)
    return result


def _incident(
    data: dict[str, Any],
    incident_id: str,
    *,
    number: Any,
    responders: list[Person | None],
    links: list[Link | None],
    **fields: Any,
) -> Incident:
    """The fields V2 and V3 share, read the same way."""
    priority = _ref(data.get("priority"))
    urgency = text(data.get("urgency"))
    service = _ref(data.get("service"))
    return Incident(
        source=Source.PAGERDUTY,
        id=incident_id,
        number=text(number),
        title=text(data.get("title")) or f"PagerDuty incident {incident_id}",
        services=[service] if service else [],
        teams=[ref for ref in map(_ref, objs(data.get("teams"))) if ref],
        severity=pagerduty_severity(priority.name if priority else None, urgency),
        urgency=urgency,
        priority=priority.name if priority else None,
        responders=_unique_people(responders),
        links=[link for link in links if link],
        **fields,
    )
