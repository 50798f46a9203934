"""GET /api/postmortems/{id}/timeline: the full evidence list, filterable, with each source's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postmortem.evidence.models import EntryKind, EvidenceSource, GatherState, SourceStatus, TimelineEntry
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.factories import new_postmortem, pagerduty_event

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def entry(index: int, kind: EntryKind, source: EvidenceSource) -> TimelineEntry:
    return TimelineEntry(
        key=f"{source.value}:{index}",
        at=T0 + timedelta(minutes=index),
        kind=kind,
        source=source,
        text=f"event {index}",
        incident_id="PTL",
    )


async def test_timeline_lists_filters_and_pages(api: Api) -> None:
    pm, _ = await api.store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PTL").incident))
    kinds = [EntryKind.TRIGGERED, EntryKind.NOTIFIED, EntryKind.ACKNOWLEDGED, EntryKind.NOTE, EntryKind.RESOLVED]
    await api.store.evidence.add_entries(pm.id, [entry(i, kinds[i % 5], EvidenceSource.PAGERDUTY) for i in range(12)])
    await api.store.evidence.add_entries(pm.id, [entry(100, EntryKind.ALERT_FIRED, EvidenceSource.ALERTMANAGER)])
    await api.store.evidence.set_status(
        pm.id,
        SourceStatus(
            source=EvidenceSource.SLACK, incident_id="PTL", state=GatherState.FAILED, detail="channel_not_found"
        ),
        T0,
    )
    url = f"/api/postmortems/{pm.id}/timeline"
    auth = api.auth(Role.VIEWER)

    everything = (await api.http.get(url, headers=auth)).json()
    assert everything["total"] == 13 and everything["next_offset"] is None
    assert [item["at"] for item in everything["items"]] == sorted(item["at"] for item in everything["items"])
    assert everything["sources"] == [
        {"source": "slack", "incident_id": "PTL", "state": "failed", "entries": 0, "detail": "channel_not_found"}
    ]

    notes = (await api.http.get(url, params={"kind": ["note", "acknowledged"]}, headers=auth)).json()
    assert {item["kind"] for item in notes["items"]} == {"note", "acknowledged"} and notes["total"] == 4
    alerts = (await api.http.get(url, params={"source": "alertmanager"}, headers=auth)).json()
    assert [item["key"] for item in alerts["items"]] == ["alertmanager:100"]

    first = (await api.http.get(url, params={"limit": 5}, headers=auth)).json()
    second = (await api.http.get(url, params={"limit": 5, "offset": first["next_offset"]}, headers=auth)).json()
    assert len(first["items"]) == 5 and first["next_offset"] == 5
    assert {i["key"] for i in first["items"]}.isdisjoint({i["key"] for i in second["items"]})

    assert (await api.http.get(url, params={"kind": "gossip"}, headers=auth)).status_code == 422
    assert (await api.http.get(url)).status_code == 401
    assert (await api.http.get("/api/postmortems/pagerduty-NOPE/timeline", headers=auth)).status_code == 404

    deleted = await api.http.delete(f"/api/postmortems/{pm.id}", headers=api.auth(Role.ADMIN))
    assert deleted.status_code == 204
    assert await api.store.evidence.count(pm.id) == 0 and await api.store.evidence.statuses(pm.id) == []
