"""Key metrics across every incident linked to one post-mortem."""

from __future__ import annotations

from datetime import datetime

from postmortem.models import Incident, KeyMetrics


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None or end < start:
        return None
    return int((end - start).total_seconds())


def impact_seconds(intervals: list[tuple[datetime, datetime]]) -> int:
    """Length of the union of the intervals: overlapping incidents are not counted twice."""
    total = 0
    current_start: datetime | None = None
    current_end: datetime | None = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_start is not None and current_end is not None:
                total += int((current_end - current_start).total_seconds())
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_start is not None and current_end is not None:
        total += int((current_end - current_start).total_seconds())
    return total


def compute_metrics(incidents: list[Incident]) -> KeyMetrics:
    if not incidents:
        return KeyMetrics()
    starts = [i.created_at for i in incidents if i.created_at]
    acks = [i.acknowledged_at for i in incidents if i.acknowledged_at]
    closes = [i.resolved_at for i in incidents if i.resolved_at]
    intervals = [
        (i.created_at, i.resolved_at) for i in incidents if i.created_at and i.resolved_at and i.resolved_at >= i.created_at
    ]
    started_at = min(starts, default=None)
    responders: list[str] = []
    services: list[str] = []
    for incident in incidents:
        responders.extend(p.label for p in incident.responders if p.label not in responders)
        services.extend(s.name for s in incident.services if s.name not in services)
    return KeyMetrics(
        highest_severity=min((i.severity for i in incidents), key=lambda s: s.rank),
        started_at=started_at,
        acknowledged_at=min(acks, default=None),
        closed_at=max(closes, default=None),
        duration_seconds=impact_seconds(intervals) if intervals else None,
        time_to_acknowledge_seconds=_seconds(started_at, min(acks, default=None)),
        time_to_resolve_seconds=_seconds(started_at, max(closes, default=None)),
        responders=responders,
        services=services,
        incident_count=len(incidents),
    )
