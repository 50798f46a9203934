"""Merge the timeline entries of every source into one timeline, and distil the events a report shows.

The same event reported by two sources (a PagerDuty resolve and the webhook's) is shown once, from
the best source; `distil` then picks the 5–15 entries the report's Timeline section lists. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from postmortem.evidence.models import EntryKind, EvidenceSource, TimelineEntry

__all__ = ["distil", "impact_start", "merge"]

SOURCE_PRIORITY = [
    EvidenceSource.PAGERDUTY,
    EvidenceSource.OPSGENIE,
    EvidenceSource.JSM,
    EvidenceSource.ALERTMANAGER,
    EvidenceSource.SLACK,
    EvidenceSource.WEBHOOK,
]
LIFECYCLE = {EntryKind.TRIGGERED, EntryKind.ACKNOWLEDGED, EntryKind.RESOLVED}
DUPLICATE_WINDOW = timedelta(seconds=2)


def _duplicate_bucket(entry: TimelineEntry) -> tuple[Any, ...]:
    if entry.kind in LIFECYCLE:
        return (entry.kind, entry.incident_id)
    return (entry.kind, " ".join(entry.text.lower().split()))


def merge(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    """Sorted, with the same event reported by two sources (same kind and incident or text, within
    two seconds) shown once: the best source's entry, naming the others in `also_in`."""
    by_source = sorted(entries, key=lambda e: (SOURCE_PRIORITY.index(e.source), e.at, e.key))
    window = DUPLICATE_WINDOW.total_seconds()
    kept: dict[tuple[Any, ...], list[TimelineEntry]] = {}  # (bucket, time slot) → kept entries
    result: list[TimelineEntry] = []
    for entry in by_source:
        bucket, slot = _duplicate_bucket(entry), int(entry.at.timestamp() // window)
        nearby = (k for s in (slot - 1, slot, slot + 1) for k in kept.get((bucket, s), ()))
        twin = next((k for k in nearby if k.source != entry.source and abs(k.at - entry.at) <= DUPLICATE_WINDOW), None)
        if twin is not None:
            if entry.source not in twin.also_in:
                twin.also_in.append(entry.source)
            continue
        copy = entry.model_copy(update={"also_in": list(entry.also_in)})
        kept.setdefault((bucket, slot), []).append(copy)
        result.append(copy)
    return sorted(result, key=lambda e: (e.at, SOURCE_PRIORITY.index(e.source), e.key))


def impact_start(entries: list[TimelineEntry]) -> TimelineEntry | None:
    """Impact began when the first alert condition started, which may be before anyone was paged."""
    first = min(
        (e for e in entries if e.kind in (EntryKind.ALERT_FIRED, EntryKind.TRIGGERED)), key=lambda e: e.at, default=None
    )
    if first is None:
        return None
    return TimelineEntry(
        key="derived:impact_start",
        at=first.at,
        kind=EntryKind.IMPACT_START,
        source=first.source,
        text=first.text,
        actor=first.actor,
        evidence_url=first.evidence_url,
        incident_id=first.incident_id,
    )


def distil(entries: list[TimelineEntry], limit: int = 15) -> list[TimelineEntry]:
    """The 5–15 events a reader needs: impact, alert, page, ack, escalations, notes, mitigation, resolution."""
    merged = merge(entries)
    if not merged:
        return []
    chosen: dict[str, TimelineEntry] = {}

    def first(kind: EntryKind) -> None:
        found = next((e for e in merged if e.kind == kind), None)
        if found is not None:
            chosen.setdefault(found.key, found)

    def last(kind: EntryKind) -> None:
        found = next((e for e in reversed(merged) if e.kind == kind), None)
        if found is not None:
            chosen.setdefault(found.key, found)

    start = impact_start(merged)
    page = next((e for e in merged if e.kind == EntryKind.TRIGGERED), None)
    if start is not None and (page is None or start.at < page.at):
        chosen[start.key] = start  # only worth a line when impact began before anyone was paged
    first(EntryKind.ALERT_FIRED)
    first(EntryKind.TRIGGERED)
    first(EntryKind.NOTIFIED)
    first(EntryKind.ACKNOWLEDGED)
    for kind, room in (
        (EntryKind.ESCALATED, 3),
        (EntryKind.REASSIGNED, 1),
        (EntryKind.MITIGATED, 3),
        (EntryKind.NOTE, 5),
    ):
        for entry in [e for e in merged if e.kind == kind][:room]:
            chosen.setdefault(entry.key, entry)
    last(EntryKind.RESOLVED)
    last(EntryKind.ALERT_RESOLVED)
    for entry in merged:  # a short incident still shows at least five events when it has them
        if len(chosen) >= 5:
            break
        chosen.setdefault(entry.key, entry)
    ordered = sorted(chosen.values(), key=lambda e: (e.at, e.kind != EntryKind.IMPACT_START))
    if len(ordered) > limit:
        essential = {EntryKind.IMPACT_START, EntryKind.TRIGGERED, EntryKind.ACKNOWLEDGED, EntryKind.RESOLVED}
        keep = [e for e in ordered if e.kind in essential]
        rest = [e for e in ordered if e.kind not in essential][: limit - len(keep)]
        ordered = sorted(keep + rest, key=lambda e: (e.at, e.kind != EntryKind.IMPACT_START))
    return ordered
