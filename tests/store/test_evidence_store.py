"""The evidence store on SQLite and PostgreSQL: idempotent entries, gather status, Alertmanager alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postmortem.evidence.models import EntryKind, EvidenceSource, GatherState, SourceStatus, TimelineEntry
from postmortem.store.store import Store

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def entry(index: int, kind: EntryKind = EntryKind.NOTE) -> TimelineEntry:
    return TimelineEntry(
        key=f"pagerduty:log:{index}",
        at=T0 + timedelta(seconds=index),
        kind=kind,
        source=EvidenceSource.PAGERDUTY,
        text=f"entry {index}",
        incident_id="P1",
    )


async def test_entries_are_stored_once_per_key(any_store: Store) -> None:
    evidence = any_store.evidence
    assert await evidence.add_entries("pm-1", [entry(i) for i in range(150)]) == 150
    assert await evidence.add_entries("pm-1", [entry(i) for i in range(100, 200)]) == 50  # 100–149 are known
    assert await evidence.add_entries("pm-2", [entry(0)]) == 1  # keys are unique per report
    stored = await evidence.entries("pm-1")
    assert len(stored) == 200 and [e.at for e in stored] == sorted(e.at for e in stored)
    assert stored[0].at.utcoffset() == timedelta(0)
    await evidence.add_entries("pm-1", [entry(500, EntryKind.RESOLVED)])
    assert await evidence.count("pm-1", kinds=[EntryKind.RESOLVED]) == 1
    assert await evidence.count("pm-1", sources=[EvidenceSource.SLACK]) == 0
    page = await evidence.entries("pm-1", limit=10, offset=195)
    assert [e.key for e in page] == [f"pagerduty:log:{i}" for i in range(195, 200)] + ["pagerduty:log:500"]


async def test_gather_status_is_upserted_per_source_and_incident(any_store: Store) -> None:
    evidence = any_store.evidence
    pending = SourceStatus(
        source=EvidenceSource.PAGERDUTY, incident_id="P1", state=GatherState.PENDING, detail="retrying: 429"
    )
    await evidence.set_status("pm-1", pending, T0)
    await evidence.set_status(
        "pm-1", pending.model_copy(update={"state": GatherState.COMPLETE, "entries": 9, "detail": None}), T0
    )
    await evidence.set_status(
        "pm-1", SourceStatus(source=EvidenceSource.SLACK, incident_id="P1", state=GatherState.NOT_CONFIGURED), T0
    )
    statuses = await evidence.statuses("pm-1")
    assert [(s.source, s.state, s.entries) for s in statuses] == [
        (EvidenceSource.PAGERDUTY, GatherState.COMPLETE, 9),
        (EvidenceSource.SLACK, GatherState.NOT_CONFIGURED, 0),
    ]
    await evidence.delete_for("pm-1")
    assert await evidence.statuses("pm-1") == [] and await evidence.count("pm-1") == 0


async def test_the_drafts_visit_adds_and_reads_back_everything_at_once(any_store: Store) -> None:
    """What a gather wrote earlier is read back with what the draft adds; a retry of the draft adds nothing."""
    evidence = any_store.evidence
    await evidence.add_entries("pm-1", [entry(i) for i in range(3, 6)])
    gathered = SourceStatus(source=EvidenceSource.PAGERDUTY, incident_id="P1", state=GatherState.COMPLETE, entries=3)
    await evidence.set_status("pm-1", gathered, T0)
    slack = SourceStatus(
        source=EvidenceSource.SLACK, incident_id="P1", state=GatherState.NOT_CONFIGURED, detail="no token"
    )
    for _ in range(2):
        statuses, timeline = await evidence.draft_evidence("pm-1", [entry(0), entry(4)], [slack], T0)
        assert statuses == [gathered, slack]
        assert [e.key for e in timeline] == [f"pagerduty:log:{i}" for i in (0, 3, 4, 5)]
    assert await evidence.statuses("pm-1") == statuses and await evidence.count("pm-1") == 4
    assert await evidence.draft_evidence("pm-2", [], [], T0) == ([], [])


async def test_a_gathers_end_stores_its_last_entries_and_counts_its_sources(any_store: Store) -> None:
    evidence = any_store.evidence
    await evidence.add_entries("pm-1", [entry(i) for i in range(2)])  # pages stored while gathering
    slack = TimelineEntry(
        key="slack:1", at=T0, kind=EntryKind.NOTE, source=EvidenceSource.SLACK, text="hi", incident_id="P1"
    )
    await evidence.add_entries("pm-1", [slack])
    done = SourceStatus(source=EvidenceSource.PAGERDUTY, incident_id="P1", state=GatherState.COMPLETE)
    assert await evidence.record_gather("pm-1", done, [entry(1), entry(2)], T0) == 3  # its own source's only
    assert await evidence.record_gather("pm-1", done, [], T0) == 3
    assert await evidence.statuses("pm-1") == [done.model_copy(update={"entries": 3})]
    assert await evidence.count("pm-1") == 4


async def test_alerts_resolve_in_place_and_a_late_firing_does_not_reopen_them(any_store: Store) -> None:
    evidence = any_store.evidence
    firing = {
        "fingerprint": "a1bc48475b20e73d",
        "status": "firing",
        "labels": {"alertname": "HighLatency", "service": "checkout"},
        "annotations": {},
        "starts_at": T0,
        "ends_at": None,
        "generator_url": None,
    }
    resolved = {**firing, "status": "resolved", "ends_at": T0 + timedelta(minutes=20)}
    await evidence.record_alerts([firing], T0)
    await evidence.record_alerts([resolved], T0 + timedelta(minutes=20))
    await evidence.record_alerts([firing], T0 + timedelta(minutes=21))  # late, from an HA peer
    [alert] = await evidence.alerts_between(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert alert["status"] == "resolved" and alert["ends_at"] == T0 + timedelta(minutes=20)
    assert await evidence.alerts_between(T0 + timedelta(minutes=30), T0 + timedelta(hours=1)) == []
    assert await evidence.alerts_between(T0 - timedelta(hours=2), T0 - timedelta(hours=1)) == []
