"""Normalising each source into timeline entries, merging duplicates, distilling, and the metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postmortem.evidence.distil import distil, merge
from postmortem.evidence.key_metrics import compute_metrics
from postmortem.evidence.models import EntryKind, EvidenceSource, TimelineEntry
from postmortem.evidence.timeline import (
    from_alert_event,
    from_incident,
    from_opsgenie_log,
    from_pagerduty_alert,
    from_pagerduty_log_entry,
    from_pagerduty_note,
)
from postmortem.webhooks.alertmanager import parse_alertmanager
from tests.factories import pagerduty_event
from tests.fixtures import fixture_json

UTC = UTC


def test_pagerduty_records_become_entries_with_their_evidence() -> None:
    [log] = fixture_json("pagerduty_rest_incident_log_entries_response.json")["log_entries"]
    entry = from_pagerduty_log_entry(log, "PT4KHLK")
    assert entry is not None
    assert (entry.kind, entry.at, entry.actor) == (
        EntryKind.TRIGGERED,
        datetime(2015, 11, 7, 0, 14, 20, tzinfo=UTC),
        "My Mail Service",
    )
    assert entry.text == "Triggered through the API: Tasks::SFDCValidator - PD_Data__c - duplicates"
    assert entry.evidence_url == log["html_url"] and entry.key == "pagerduty:log:Q02JTSNZWHSEKV"
    [alert] = fixture_json("pagerduty_rest_incident_alerts_response.json")["alerts"]
    fired = from_pagerduty_alert(alert, "PT4KHLK")
    assert fired is not None and fired.kind == EntryKind.ALERT_FIRED and "(critical)" in fired.text
    notes = fixture_json("pagerduty_rest_incident_notes_response.json")["notes"]
    first = from_pagerduty_note(notes[0], "PT4KHLK")
    assert first is not None and first.at == datetime(2013, 3, 6, 20, 28, 51, tzinfo=UTC)  # -05:00 → UTC
    assert first.actor == "Earline Greenholt" and first.kind == EntryKind.NOTE
    mitigation = from_pagerduty_note({**notes[0], "content": "Rolled back the deploy"}, "PT4KHLK")
    assert mitigation is not None and mitigation.kind == EntryKind.MITIGATED
    assert from_pagerduty_log_entry({"id": "x", "type": "trigger_log_entry"}, "P") is None  # no time, no entry


def test_opsgenie_logs_are_classified() -> None:
    logs = fixture_json("opsgenie_api_list_alert_logs_response.json")["data"]
    kinds = [from_opsgenie_log(log, "A1").kind for log in logs]  # type: ignore[union-attr]
    assert kinds == [EntryKind.ACKNOWLEDGED, EntryKind.NOTIFIED]
    again = [from_opsgenie_log(log, "A1").key for log in logs]  # type: ignore[union-attr]
    assert again == [f"opsgenie:log:A1:{log['offset']}" for log in logs]


def test_alertmanager_alerts_keep_nanosecond_times_in_utc() -> None:
    [first, _] = parse_alertmanager(fixture_json("alertmanager_webhook_v4_firing.json"))
    assert first["starts_at"] == datetime(2020, 2, 6, 0, 17, 58, 432911, tzinfo=UTC) and first["ends_at"] is None
    [fired] = from_alert_event(first, "P1")
    assert fired.kind == EntryKind.ALERT_FIRED and fired.text == "High CPU Temperature: High CPU core temperature"
    resolved = from_alert_event({**first, "status": "resolved", "ends_at": first["starts_at"] + timedelta(minutes=5)})
    assert [e.kind for e in resolved] == [EntryKind.ALERT_FIRED, EntryKind.ALERT_RESOLVED]


def test_duplicates_from_two_sources_are_merged_into_the_richer_one() -> None:
    incident = pagerduty_event("PMERGE").incident
    [resolved_by_webhook] = from_incident(incident)
    from_api = TimelineEntry(
        key="pagerduty:log:R1",
        at=resolved_by_webhook.at + timedelta(milliseconds=300),
        kind=EntryKind.RESOLVED,
        source=EvidenceSource.PAGERDUTY,
        text="Resolved by PIG 208",
        incident_id="PMERGE",
    )
    merged = merge([resolved_by_webhook, from_api])
    assert [e.key for e in merged] == ["pagerduty:log:R1"] and merged[0].also_in == [EvidenceSource.WEBHOOK]
    other_incident = from_api.model_copy(update={"key": "pagerduty:log:R2", "incident_id": "OTHER"})
    assert len(merge([from_api, other_incident])) == 2  # same second, different incidents: both kept


def _entries(count: int, start: datetime) -> list[TimelineEntry]:
    kinds = [EntryKind.NOTIFIED, EntryKind.ACKNOWLEDGED, EntryKind.NOTE, EntryKind.ESCALATED]
    result = [
        TimelineEntry(
            key="t",
            at=start,
            kind=EntryKind.TRIGGERED,
            source=EvidenceSource.PAGERDUTY,
            text="Triggered",
            incident_id="P",
        )
    ]
    result += [
        TimelineEntry(
            key=f"e{i}",
            at=start + timedelta(minutes=i),
            kind=kinds[i % 4],
            source=EvidenceSource.PAGERDUTY,
            text=f"event {i}",
            incident_id="P",
        )
        for i in range(1, count - 1)
    ]
    result.append(
        TimelineEntry(
            key="r",
            at=start + timedelta(minutes=count),
            kind=EntryKind.RESOLVED,
            source=EvidenceSource.PAGERDUTY,
            text="Resolved",
            incident_id="P",
        )
    )
    return result


def test_distil_keeps_the_key_events_within_five_to_fifteen() -> None:
    start = datetime(2024, 1, 1, 10, tzinfo=UTC)
    entries = _entries(200, start)
    key = distil(entries)
    assert 5 <= len(key) <= 15
    assert key[0].kind == EntryKind.TRIGGERED and key[-1].kind == EntryKind.RESOLVED
    assert [e.kind for e in key].count(EntryKind.ACKNOWLEDGED) == 1
    assert [e.kind for e in key].count(EntryKind.ESCALATED) == 3
    assert [e.at for e in key] == sorted(e.at for e in key)
    assert len(distil(entries[:3])) == 3  # a tiny incident shows what it has

    alert = TimelineEntry(
        key="am",
        at=start - timedelta(minutes=7),
        kind=EntryKind.ALERT_FIRED,
        source=EvidenceSource.ALERTMANAGER,
        text="HighErrorRate: 5xx above 2%",
        incident_id="P",
    )
    with_impact = distil(entries + [alert])
    assert with_impact[0].kind == EntryKind.IMPACT_START and with_impact[0].at == alert.at


def test_metrics_learn_the_impact_start_from_monitoring() -> None:
    incident = pagerduty_event("PMETRIC", created_at="2020-02-06T00:25:00Z").incident
    [firing, _] = parse_alertmanager(fixture_json("alertmanager_webhook_v4_firing.json"))
    timeline = from_incident(incident) + from_alert_event(firing, incident.id)
    metrics = compute_metrics([incident], timeline)
    assert metrics.impact_started_at == firing["starts_at"]
    assert metrics.detected_at == datetime(2020, 2, 6, 0, 25, tzinfo=UTC)
    assert metrics.detected_at is not None and incident.resolved_at is not None
    assert metrics.time_to_detect_seconds == int((metrics.detected_at - firing["starts_at"]).total_seconds())
    assert metrics.duration_seconds == int((incident.resolved_at - firing["starts_at"]).total_seconds())
    assert metrics.time_to_resolve_seconds == int((incident.resolved_at - metrics.detected_at).total_seconds())
    assert compute_metrics([incident], from_incident(incident)).time_to_detect_seconds is None
