"""Turn each source's records into timeline entries (merging them and distilling the key events: `distil.py`).

Pure functions over the raw JSON the integrations return: no I/O, so the same rules apply in
activities, the API and the benchmark.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from postmortem.evidence.models import EntryKind, EvidenceSource, TimelineEntry
from postmortem.models import Incident, Person

PAGERDUTY_KINDS = {
    "trigger_log_entry": EntryKind.TRIGGERED,
    "acknowledge_log_entry": EntryKind.ACKNOWLEDGED,
    "acknowledgement_log_entry": EntryKind.ACKNOWLEDGED,
    "resolve_log_entry": EntryKind.RESOLVED,
    "annotate_log_entry": EntryKind.NOTE,
    "assign_log_entry": EntryKind.REASSIGNED,
    "delegate_log_entry": EntryKind.REASSIGNED,
    "escalate_log_entry": EntryKind.ESCALATED,
    "exhaust_escalation_path_log_entry": EntryKind.ESCALATED,
    "repeat_escalation_path_log_entry": EntryKind.ESCALATED,
    "unacknowledge_log_entry": EntryKind.ESCALATED,
    "notify_log_entry": EntryKind.NOTIFIED,
}
OPSGENIE_RULES = [
    (re.compile(r"\backnowledged\b", re.I), EntryKind.ACKNOWLEDGED),
    (re.compile(r"\bclosed\b", re.I), EntryKind.RESOLVED),
    (re.compile(r"\bcreated\b", re.I), EntryKind.TRIGGERED),
    (re.compile(r"escalat", re.I), EntryKind.ESCALATED),
    (re.compile(r"assign|took ownership|owner", re.I), EntryKind.REASSIGNED),
    (re.compile(r"notif|sent .* (?:via|to)|\bviewed\b|delivered", re.I), EntryKind.NOTIFIED),
]
# JSM's logs explain themselves ("Assigning owner team [Dream] to alert because … not created via team
# integration"): who got the alert is read before a "created" in the reason.
JSM_RULES = [
    OPSGENIE_RULES[0],
    OPSGENIE_RULES[1],
    OPSGENIE_RULES[4],
    OPSGENIE_RULES[2],
    OPSGENIE_RULES[3],
    OPSGENIE_RULES[5],
]
MITIGATION = re.compile(r"\b(mitigat|rolled? back|rollback|failed over|failover|workaround)", re.I)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        # Go's RFC 3339 may carry more fractional digits than Python takes: cut to microseconds.
        match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$", value)
        if not match:
            return None
        fraction = (match.group(2) or "")[:7]
        try:
            parsed = datetime.fromisoformat(
                f"{match.group(1)}{fraction}{(match.group(3) or 'Z').replace('Z', '+00:00')}"
            )
        except ValueError:
            return None  # an impossible date (month 13, 30 February): not a time
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def _name(value: Any) -> str | None:
    if isinstance(value, dict):
        name = value.get("summary") or value.get("name")
        return str(name) if name else None
    return None


# Entries whose person acted themselves (the agent, the author), and those about whom they were assigned.
ACTED = {EntryKind.ACKNOWLEDGED, EntryKind.RESOLVED, EntryKind.NOTE, EntryKind.MITIGATED}
ASSIGNED = {EntryKind.ESCALATED, EntryKind.REASSIGNED}


def _user(value: Any) -> Person | None:
    """A PagerDuty user reference (or a full user object) as a Person; None for services and integrations."""
    if not isinstance(value, dict) or value.get("type") not in (None, "user_reference", "user"):
        return None
    name, email = value.get("summary") or value.get("name"), value.get("email")
    if not (name or email):
        return None
    ident = value.get("id")
    return Person(
        id=str(ident) if ident else None,
        name=str(name) if name else None,
        email=str(email) if isinstance(email, str) and "@" in email else None,
    )


def _owner(owner: Any) -> Person | None:
    """An Opsgenie log's owner: an email or a user name; "System" and empty owners are not people."""
    if not isinstance(owner, str) or not owner.strip() or owner.strip().casefold() in {"system", "alert api"}:
        return None
    owner = owner.strip()
    return Person(email=owner) if "@" in owner else Person(name=owner)


def _clip(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def from_pagerduty_log_entry(entry: dict[str, Any], incident_id: str) -> TimelineEntry | None:
    at = parse_time(entry.get("created_at"))
    if at is None or not entry.get("id"):
        return None
    kind = PAGERDUTY_KINDS.get(str(entry.get("type")), EntryKind.NOTE)
    text = str(entry.get("summary") or entry.get("type") or "")
    note = entry.get("note") if isinstance(entry.get("note"), str) else None
    details = found if isinstance(found := entry.get("event_details"), dict) else {}
    if kind == EntryKind.NOTE and note:
        text = note
    elif kind == EntryKind.TRIGGERED and details.get("description"):
        text = f"{text}: {details['description']}"
    if kind == EntryKind.NOTE and MITIGATION.search(text):
        kind = EntryKind.MITIGATED
    actor = _name(entry.get("agent"))
    if kind == EntryKind.NOTIFIED and _name(entry.get("user")):
        actor = _name(entry.get("user"))
    people: list[Person | None] = []
    if kind in ACTED:
        people = [_user(entry.get("agent"))]
    elif kind in ASSIGNED and isinstance(entry.get("assignees"), list):
        people = [_user(assignee) for assignee in entry["assignees"]]
    return TimelineEntry(
        key=f"pagerduty:log:{entry['id']}",
        at=at,
        kind=kind,
        source=EvidenceSource.PAGERDUTY,
        text=_clip(text),
        actor=actor,
        evidence_url=_url(entry.get("html_url")),
        incident_id=incident_id,
        people=[person for person in people if person],
    )


def from_pagerduty_alert(alert: dict[str, Any], incident_id: str) -> TimelineEntry | None:
    at = parse_time(alert.get("created_at"))
    if at is None or not alert.get("id"):
        return None
    severity = f" ({alert['severity']})" if alert.get("severity") else ""
    return TimelineEntry(
        key=f"pagerduty:alert:{alert['id']}",
        at=at,
        kind=EntryKind.ALERT_FIRED,
        source=EvidenceSource.PAGERDUTY,
        text=_clip(f"Alert: {alert.get('summary') or alert.get('alert_key') or alert['id']}{severity}"),
        actor=_name(alert.get("service")),
        evidence_url=_url(alert.get("html_url")),
        incident_id=incident_id,
    )


def from_pagerduty_note(note: dict[str, Any], incident_id: str) -> TimelineEntry | None:
    at = parse_time(note.get("created_at"))
    if at is None or not note.get("id"):
        return None
    text = str(note.get("content") or "")
    return TimelineEntry(
        key=f"pagerduty:note:{note['id']}",
        at=at,
        kind=EntryKind.MITIGATED if MITIGATION.search(text) else EntryKind.NOTE,
        source=EvidenceSource.PAGERDUTY,
        text=_clip(text),
        actor=_name(note.get("user")),
        incident_id=incident_id,
        people=[person] if (person := _user(note.get("user"))) else [],
    )


def from_opsgenie_log(log: dict[str, Any], alert_id: str) -> TimelineEntry | None:
    at = parse_time(log.get("createdAt"))
    if at is None:
        return None
    text = str(log.get("log") or "")
    kind = next((kind for pattern, kind in OPSGENIE_RULES if pattern.search(text)), EntryKind.NOTE)
    if log.get("type") == "alertRecipient" and kind == EntryKind.NOTE:
        kind = EntryKind.NOTIFIED
    offset = log.get("offset") or f"{at.isoformat()}:{hashlib.sha1(text.encode()).hexdigest()[:12]}"
    return TimelineEntry(
        key=f"opsgenie:log:{alert_id}:{offset}",
        at=at,
        kind=kind,
        source=EvidenceSource.OPSGENIE,
        text=_clip(text),
        actor=log.get("owner") or None,
        incident_id=alert_id,
        people=[person] if kind in ACTED and (person := _owner(log.get("owner"))) else [],
    )


def from_opsgenie_note(note: dict[str, Any], alert_id: str) -> TimelineEntry | None:
    at = parse_time(note.get("createdAt"))
    if at is None:
        return None
    text = str(note.get("note") or "")
    return TimelineEntry(
        key=f"opsgenie:note:{alert_id}:{note.get('offset') or at.isoformat()}",
        at=at,
        kind=EntryKind.MITIGATED if MITIGATION.search(text) else EntryKind.NOTE,
        source=EvidenceSource.OPSGENIE,
        text=_clip(text),
        actor=note.get("owner") or None,
        incident_id=alert_id,
        people=[person] if (person := _owner(note.get("owner"))) else [],
    )


def from_jsm_log(log: dict[str, Any], alert_id: str) -> TimelineEntry | None:
    """A JSM Operations `AlertLog` (`logTime`, `logType`, `log`, `owner`): Opsgenie's log texts, read alike."""
    at = parse_time(log.get("logTime"))
    if at is None:
        return None
    text = str(log.get("log") or "")
    kind = next((kind for pattern, kind in JSM_RULES if pattern.search(text)), EntryKind.NOTE)
    if log.get("logType") == "alertRecipient" and kind == EntryKind.NOTE:
        kind = EntryKind.NOTIFIED
    digest = hashlib.sha1(f"{log.get('logType')}:{log.get('owner')}:{text}".encode()).hexdigest()[:12]
    return TimelineEntry(
        key=f"jsm:log:{alert_id}:{at.isoformat()}:{digest}",  # a log has no id: its time and words are its key
        at=at,
        kind=kind,
        source=EvidenceSource.JSM,
        text=_clip(text),
        actor=log.get("owner") or None,
        incident_id=alert_id,
        # As Opsgenie's: the owner counts for what they did themselves (acknowledged, closed), not for an assignment.
        people=[person] if kind in ACTED and (person := _owner(log.get("owner"))) else [],
    )


def from_jsm_note(note: dict[str, Any], alert_id: str) -> TimelineEntry | None:
    """A JSM Operations `AlertNote` (`id`, `createdAt`, `note`, `owner`)."""
    at = parse_time(note.get("createdAt"))
    if at is None:
        return None
    text = str(note.get("note") or "")
    return TimelineEntry(
        key=f"jsm:note:{alert_id}:{note.get('id') or at.isoformat()}",
        at=at,
        kind=EntryKind.MITIGATED if MITIGATION.search(text) else EntryKind.NOTE,
        source=EvidenceSource.JSM,
        text=_clip(text),
        actor=note.get("owner") or None,
        incident_id=alert_id,
        people=[person] if (person := _owner(note.get("owner"))) else [],
    )


def from_alert_event(alert: dict[str, Any], incident_id: str | None = None) -> list[TimelineEntry]:
    """An Alertmanager alert as we stored it: fired, and resolved when it ended."""
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    name = labels.get("alertname") or "alert"
    summary = annotations.get("summary") or annotations.get("description") or ""
    text = _clip(f"{name}: {summary}" if summary else name)
    base = f"alertmanager:{alert.get('fingerprint')}:{alert['starts_at'].isoformat()}"
    actor = labels.get("service") or labels.get("job") or labels.get("instance")

    def entry(event: str, at: datetime, kind: EntryKind) -> TimelineEntry:
        return TimelineEntry(
            key=f"{base}:{event}",
            at=at,
            kind=kind,
            source=EvidenceSource.ALERTMANAGER,
            text=text,
            actor=actor,
            evidence_url=_url(alert.get("generator_url")),
            incident_id=incident_id,
        )

    entries = [entry("fired", alert["starts_at"], EntryKind.ALERT_FIRED)]
    if alert.get("ends_at") is not None and alert.get("status") == "resolved":
        entries.append(entry("resolved", alert["ends_at"], EntryKind.ALERT_RESOLVED))
    return entries


def from_slack_message(message: dict[str, Any], channel: str, incident_id: str | None = None) -> TimelineEntry | None:
    ts = message.get("ts", "")  # missing: float("") fails like any other bad value
    try:
        at = datetime.fromtimestamp(float(ts), tz=UTC)
    except (TypeError, ValueError):
        return None
    text = str(message.get("text") or "")
    if not text or message.get("subtype") in {"channel_join", "channel_leave"}:
        return None
    return TimelineEntry(
        key=f"slack:{channel}:{ts}",
        at=at,
        kind=EntryKind.MITIGATED if MITIGATION.search(text) else EntryKind.MESSAGE,
        source=EvidenceSource.SLACK,
        text=_clip(text),
        actor=message.get("user") or message.get("username"),
        incident_id=incident_id,
    )


def from_incident(incident: Incident) -> list[TimelineEntry]:
    """What the webhook itself told us: a floor for the timeline when no API is configured."""
    label = f"{incident.source.value} #{incident.number or incident.id} {incident.title}"
    link = incident.links[0].url if incident.links else None
    entries = []
    for kind, at, actor in (
        (EntryKind.TRIGGERED, incident.created_at, None),
        (EntryKind.ACKNOWLEDGED, incident.acknowledged_at, None),
        (EntryKind.RESOLVED, incident.resolved_at, incident.resolved_by.label if incident.resolved_by else None),
    ):
        if at is not None:
            entries.append(
                TimelineEntry(
                    key=f"webhook:{incident.source.value}:{incident.id}:{kind.value}",
                    at=at,
                    kind=kind,
                    source=EvidenceSource.WEBHOOK,
                    text=label,
                    actor=actor,
                    evidence_url=link,
                    incident_id=incident.id,
                    people=[incident.resolved_by] if kind == EntryKind.RESOLVED and incident.resolved_by else [],
                )
            )
    return entries
