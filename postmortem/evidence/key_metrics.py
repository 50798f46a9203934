"""Key metrics across every incident linked to one post-mortem, sharpened by the gathered timeline.

Definitions (also in the README):
- impact start: the earliest alert condition (an Alertmanager alert's start, an alert, a trigger);
- detected: the first alert or trigger in the paging system (PagerDuty, Opsgenie);
- time to detect = detected − impact start, known only when monitoring (Alertmanager) saw the
  impact; time to acknowledge = first acknowledgement − detected;
- time to resolve = last resolution − detected;
- total impact duration: the union of the incidents' [start, resolution] intervals, the earliest
  one reaching back to the impact start; overlaps count once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from postmortem.evidence.models import EntryKind, EvidenceSource, TimelineEntry
from postmortem.evidence.responders import responders as who_responded
from postmortem.intervals import union
from postmortem.models import Incident, KeyMetrics

PAGING = {EvidenceSource.PAGERDUTY, EvidenceSource.OPSGENIE, EvidenceSource.JSM, EvidenceSource.WEBHOOK}
MONITORING = {EvidenceSource.ALERTMANAGER}


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None or end < start:
        return None
    return int((end - start).total_seconds())


def impact_seconds(intervals: list[tuple[datetime, datetime]]) -> int:
    """Length of the union of the intervals: overlapping incidents are not counted twice."""
    return sum(int((end - start).total_seconds()) for start, end in union(intervals))


def _earliest(values: list[datetime | None]) -> datetime | None:
    return min((v for v in values if v is not None), default=None)


def _latest(values: list[datetime | None]) -> datetime | None:
    return max((v for v in values if v is not None), default=None)


def compute_metrics(
    incidents: list[Incident], timeline: list[TimelineEntry] | None = None, people: Mapping[str, str] | None = None
) -> KeyMetrics:
    """`people` is the teams file's `[people]` (id or name → email): it makes one responder of a
    person the sources name differently."""
    if not incidents:
        return KeyMetrics()
    timeline = timeline or []

    def of(kinds: set[EntryKind], sources: set[EvidenceSource] | None = None, incident: str | None = None) -> list:
        return [
            e.at
            for e in timeline
            if e.kind in kinds
            and (sources is None or e.source in sources)
            and (incident is None or e.incident_id == incident)
        ]

    alerts = {EntryKind.ALERT_FIRED, EntryKind.TRIGGERED}
    started_at = _earliest([i.created_at for i in incidents] + of({EntryKind.TRIGGERED}, PAGING))
    detected_at = _earliest(of(alerts, PAGING) + [started_at])
    impact_started_at = _earliest(of(alerts | {EntryKind.IMPACT_START}) + [detected_at])
    acknowledged_at = _earliest([i.acknowledged_at for i in incidents] + of({EntryKind.ACKNOWLEDGED}))
    closed_at = _latest([i.resolved_at for i in incidents] + of({EntryKind.RESOLVED}))

    intervals = []
    for incident in incidents:
        start = _earliest([incident.created_at] + of({EntryKind.TRIGGERED}, PAGING, incident.id))
        end = _latest([incident.resolved_at] + of({EntryKind.RESOLVED}, None, incident.id))
        if start is not None and end is not None and end >= start:
            intervals.append((start, end))
    if intervals and impact_started_at is not None:
        first = min(intervals)
        intervals[intervals.index(first)] = (min(first[0], impact_started_at), first[1])

    acted = who_responded(incidents, timeline, people)
    services: list[str] = []
    for incident in incidents:
        services.extend(s.name for s in incident.services if s.name not in services)
    return KeyMetrics(
        highest_severity=min((i.severity for i in incidents), key=lambda s: s.rank),
        impact_started_at=impact_started_at,
        started_at=started_at,
        detected_at=detected_at,
        acknowledged_at=acknowledged_at,
        closed_at=closed_at,
        duration_seconds=impact_seconds(intervals) if intervals else None,
        # Only evidence from outside the paging system (Alertmanager) can show impact before the page.
        time_to_detect_seconds=_seconds(impact_started_at, detected_at) if of(alerts, MONITORING) else None,
        time_to_acknowledge_seconds=_seconds(detected_at, acknowledged_at),
        time_to_resolve_seconds=_seconds(detected_at, closed_at),
        responders=list(dict.fromkeys(responder.label for responder in acted)),
        people=acted,
        services=services,
        incident_count=len(incidents),
    )
