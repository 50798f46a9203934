"""decide(): full / lightweight / skip; compute_metrics() over several incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postmortem.evidence.key_metrics import compute_metrics, impact_seconds
from postmortem.incident.policy import decide
from postmortem.incident.teams import PolicyConfig
from postmortem.models import Incident, Person, PolicyOutcome, Ref, Severity, Source


def at(hhmm: str, day: int = 9) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2024, 3, day, hours, minutes, tzinfo=UTC)


def incident(ident: str = "P1", **changes) -> Incident:
    fields = dict(
        source=Source.PAGERDUTY,
        id=ident,
        title=f"incident {ident}",
        severity=Severity.SEV3,
        urgency="low",
        created_at=at("10:00"),
        resolved_at=at("10:30"),
    )
    fields.update(changes)
    return Incident(**fields)


# --- decide() --------------------------------------------------------------------------------


@pytest.mark.parametrize("severity", [Severity.SEV1, Severity.SEV2])
def test_sev1_and_sev2_get_the_full_report(severity):
    decision = decide([incident(severity=severity)], PolicyConfig())
    assert decision.outcome == PolicyOutcome.FULL
    assert any(severity.value in reason for reason in decision.reasons)


@pytest.mark.parametrize("urgency", ["high", "HIGH"])
def test_high_urgency_gets_the_full_report(urgency):
    assert decide([incident(urgency=urgency)], PolicyConfig()).outcome == PolicyOutcome.FULL


@pytest.mark.parametrize(
    "minutes, outcome", [(61, PolicyOutcome.FULL), (60, PolicyOutcome.LIGHTWEIGHT), (59, PolicyOutcome.LIGHTWEIGHT)]
)
def test_longer_than_an_hour_gets_the_full_report(minutes, outcome):
    start = at("10:00")
    decision = decide([incident(created_at=start, resolved_at=start + timedelta(minutes=minutes))], PolicyConfig())
    assert decision.outcome == outcome


@pytest.mark.parametrize("flag", ["customer_impact", "data_loss", "security"])
def test_flags_get_the_full_report(flag):
    assert decide([incident("P1", **{flag: True})], PolicyConfig()).outcome == PolicyOutcome.FULL


def test_otherwise_lightweight():
    decision = decide([incident()], PolicyConfig())
    assert decision.outcome == PolicyOutcome.LIGHTWEIGHT
    assert len(decision.reasons) == 1 and "lightweight" in decision.reasons[0]


def test_otherwise_skip_policy():
    decision = decide([incident()], PolicyConfig(otherwise=PolicyOutcome.SKIP))
    assert decision.outcome == PolicyOutcome.SKIP
    # A skip policy does not skip what qualifies for the full report.
    assert (
        decide([incident(severity=Severity.SEV1)], PolicyConfig(otherwise=PolicyOutcome.SKIP)).outcome
        == PolicyOutcome.FULL
    )


def test_any_incident_of_several_can_require_the_full_report():
    decision = decide([incident("A"), incident("B", security=True)], PolicyConfig())
    assert decision.outcome == PolicyOutcome.FULL
    assert len(decision.reasons) == 1 and "B" in decision.reasons[0]


def test_several_reasons_are_all_listed():
    decision = decide(
        [incident(severity=Severity.SEV1, urgency="high", data_loss=True, resolved_at=at("12:00"))], PolicyConfig()
    )
    assert decision.outcome == PolicyOutcome.FULL
    assert len(decision.reasons) == 4


def test_missing_times_do_not_count_as_long():
    assert (
        decide([incident(created_at=None, resolved_at=at("23:00"))], PolicyConfig()).outcome
        == PolicyOutcome.LIGHTWEIGHT
    )


@pytest.mark.parametrize(
    "policy, changes, outcome",
    [
        (PolicyConfig(full_at_or_above=Severity.SEV1), dict(severity=Severity.SEV2), PolicyOutcome.LIGHTWEIGHT),
        (PolicyConfig(full_at_or_above=Severity.SEV1), dict(severity=Severity.SEV1), PolicyOutcome.FULL),
        (PolicyConfig(full_at_or_above=Severity.SEV3), dict(severity=Severity.SEV3), PolicyOutcome.FULL),
        (PolicyConfig(full_at_or_above=Severity.SEV3), dict(severity=Severity.SEV4), PolicyOutcome.LIGHTWEIGHT),
        (PolicyConfig(full_if_high_urgency=False), dict(urgency="high"), PolicyOutcome.LIGHTWEIGHT),
        (PolicyConfig(full_after_minutes=20), dict(resolved_at=at("10:25")), PolicyOutcome.FULL),
        (PolicyConfig(full_after_minutes=240), dict(resolved_at=at("13:00")), PolicyOutcome.LIGHTWEIGHT),
        (
            PolicyConfig(full_if_flagged=False),
            dict(customer_impact=True, data_loss=True, security=True),
            PolicyOutcome.LIGHTWEIGHT,
        ),
        (PolicyConfig(full_if_flagged=False, otherwise=PolicyOutcome.SKIP), dict(security=True), PolicyOutcome.SKIP),
    ],
)
def test_thresholds_are_configurable(policy, changes, outcome):
    assert decide([incident(**changes)], policy).outcome == outcome


# --- impact_seconds() ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "intervals, seconds",
    [
        ([], 0),
        ([("10:00", "11:00")], 3600),
        ([("10:00", "11:00"), ("10:30", "12:00")], 7200),  # overlapping
        ([("10:30", "12:00"), ("10:00", "11:00")], 7200),  # order does not matter
        ([("10:00", "11:00"), ("12:00", "12:30")], 5400),  # disjoint: the sum
        ([("10:00", "12:00"), ("10:30", "11:00")], 7200),  # nested
        ([("10:00", "11:00"), ("11:00", "12:00")], 7200),  # touching
        ([("10:00", "11:00"), ("10:00", "11:00")], 3600),  # identical
        ([("10:00", "10:30"), ("10:15", "11:00"), ("13:00", "13:10"), ("13:05", "13:20")], 3600 + 1200),
    ],
)
def test_impact_seconds_is_the_union(intervals, seconds):
    assert impact_seconds([(at(start), at(end)) for start, end in intervals]) == seconds


# --- compute_metrics() -----------------------------------------------------------------------


def test_metrics_over_several_overlapping_incidents():
    first = incident(
        "A",
        severity=Severity.SEV3,
        created_at=at("10:00"),
        acknowledged_at=at("10:07"),
        resolved_at=at("11:00"),
        responders=[Person(name="Alice"), Person(email="bob@example.com")],
        services=[Ref(name="api")],
    )
    second = incident(
        "B",
        severity=Severity.SEV1,
        created_at=at("10:30"),
        acknowledged_at=at("10:35"),
        resolved_at=at("12:00"),
        responders=[Person(email="bob@example.com"), Person(name="Carol")],
        services=[Ref(name="api"), Ref(name="db")],
    )
    metrics = compute_metrics([first, second])
    assert metrics.highest_severity == Severity.SEV1
    assert metrics.started_at == at("10:00")
    assert metrics.acknowledged_at == at("10:07")
    assert metrics.closed_at == at("12:00")
    assert metrics.duration_seconds == 2 * 3600
    assert metrics.time_to_acknowledge_seconds == 7 * 60
    assert metrics.time_to_resolve_seconds == 2 * 3600
    assert metrics.responders == ["Alice", "bob@example.com", "Carol"]
    assert metrics.services == ["api", "db"]
    assert metrics.incident_count == 2


def test_metrics_over_disjoint_incidents_sum_the_durations():
    metrics = compute_metrics(
        [
            incident("A", created_at=at("10:00"), resolved_at=at("11:00")),
            incident("B", severity=Severity.SEV4, created_at=at("12:00"), resolved_at=at("12:30")),
        ]
    )
    assert metrics.duration_seconds == 5400
    assert metrics.time_to_resolve_seconds == int(timedelta(hours=2, minutes=30).total_seconds())
    assert metrics.highest_severity == Severity.SEV3


def test_responders_deduplicated_within_one_incident():
    metrics = compute_metrics([incident(responders=[Person(name="Alice"), Person(name="Alice"), Person(id="U1")])])
    assert metrics.responders == ["Alice", "U1"]


def test_metrics_with_missing_times():
    metrics = compute_metrics([incident(created_at=None, resolved_at=at("11:00"))])
    assert metrics.started_at is None and metrics.closed_at == at("11:00")
    assert metrics.duration_seconds is None
    assert metrics.time_to_acknowledge_seconds is None and metrics.time_to_resolve_seconds is None


def test_resolved_before_created_gives_no_duration():
    metrics = compute_metrics([incident(created_at=at("11:00"), resolved_at=at("10:00"))])
    assert metrics.duration_seconds is None and metrics.time_to_resolve_seconds is None


def test_no_incidents_gives_empty_metrics():
    metrics = compute_metrics([])
    assert metrics.incident_count == 0 and metrics.highest_severity is None and metrics.duration_seconds is None
