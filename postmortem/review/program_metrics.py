"""Program-level metrics across post-mortems: is the process working, and what keeps failing?

Pure over reports, their reviews, action items and follow-up checks: this is what each figure means.
The API and the metrics page count the same figures in SQL (`store/program_metrics.py`, so a large
store is never loaded); tests compare the two on both databases. It counts exactly the reports it
is given (the ones the caller may see), so a report hidden from someone moves none of their figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from statistics import mean, median
from typing import Any

from pydantic import BaseModel

from postmortem.models import ActionItemStatus, Postmortem, Status
from postmortem.review.lifecycle import Review

DONE = (Status.PUBLISHED, Status.ARCHIVED)
# One report as the figures need it: the report, its review, its follow-up checks (newest last).
MetricsInput = tuple[Postmortem, Review, list[dict[str, Any]]]


class Summary(BaseModel):
    mean: float | None
    median: float | None
    count: int


class ProgramMetrics(BaseModel):
    postmortems_created: int
    completion_rate: float | None
    mean_hours_resolution_to_publish: float | None
    action_items_total: int
    action_items_completed_on_time_percent: float | None
    action_items_overdue: int
    time_to_detect_seconds: Summary
    time_to_resolve_seconds: Summary
    recurrence_rate: float | None
    cause_categories: dict[str, int]
    most_affected_services: dict[str, int]
    team_completion_rates: dict[str, float]


def _summary(values: list[float]) -> Summary:
    return Summary(
        mean=round(mean(values), 1) if values else None,
        median=round(median(values), 1) if values else None,
        count=len(values),
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def empty_metrics() -> ProgramMetrics:
    """The figures of no reports at all (a month without any, an empty store)."""
    return program_metrics([], datetime.now(UTC))


def program_metrics(reports: list[MetricsInput], today: datetime) -> ProgramMetrics:
    """`reports`: each report with its review and its follow-up checks (newest last)."""
    considered = [(pm, review, checks) for pm, review, checks in reports if pm.status != Status.SKIPPED]
    published = [(pm, review) for pm, review, _ in considered if pm.status in DONE]
    to_publish = []
    for pm, review in published:
        first = next((t.at for t in review.history if t.to_status == Status.PUBLISHED), None)
        resolved = pm.metrics.closed_at
        if first and resolved and first >= resolved:
            to_publish.append((first - resolved).total_seconds() / 3600)
    items = [item for pm, _, _ in considered for item in pm.action_items]
    with_due = [i for i in items if i.due_date and i.status == ActionItemStatus.COMPLETED]
    on_time = [i for i in with_due if i.completed_at and i.completed_at.date() <= i.due_date]  # type: ignore[operator]
    overdue = [
        i
        for i in items
        if i.due_date
        and i.due_date < today.date()
        and i.status in (ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS)
    ]
    judged = [checks[-1]["verdict"] for _, _, checks in considered if checks and checks[-1].get("verdict")]
    teams: dict[str, list[bool]] = {}
    for pm, _, _ in considered:
        teams.setdefault(pm.team or "—", []).append(pm.status in DONE)
    return ProgramMetrics(
        postmortems_created=len(considered),
        completion_rate=_rate(len(published), len(considered)),
        mean_hours_resolution_to_publish=round(mean(to_publish), 1) if to_publish else None,
        action_items_total=len(items),
        action_items_completed_on_time_percent=round(100 * len(on_time) / len(with_due), 1) if with_due else None,
        action_items_overdue=len(overdue),
        time_to_detect_seconds=_summary(
            [
                pm.metrics.time_to_detect_seconds
                for pm, _, _ in considered
                if pm.metrics.time_to_detect_seconds is not None
            ]
        ),
        time_to_resolve_seconds=_summary(
            [
                pm.metrics.time_to_resolve_seconds
                for pm, _, _ in considered
                if pm.metrics.time_to_resolve_seconds is not None
            ]
        ),
        recurrence_rate=_rate(sum(1 for v in judged if not v.get("worked", True)), len(judged)),
        cause_categories=dict(
            Counter(pm.cause_category.value for pm, _, _ in considered if pm.cause_category).most_common()
        ),
        most_affected_services=dict(Counter(s for pm, _, _ in considered for s in pm.services).most_common(10)),
        team_completion_rates={team: round(sum(done) / len(done), 3) for team, done in sorted(teams.items())},
    )


def month_of(report: MetricsInput) -> str:
    """The month (UTC) the incident started; a backfilled report counts in its incident's month."""
    pm = report[0]
    return (pm.metrics.started_at or pm.created_at).astimezone(UTC).strftime("%Y-%m")


def months_between(first: str, last: str) -> list[str]:
    year, month = (int(p) for p in first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def over_time(reports: list[MetricsInput], now: datetime, months: int) -> tuple[list[str], list[ProgramMetrics]]:
    """The newest `months` months the incidents started in (gaps included) and the figures of each month's reports."""
    by_month: dict[str, list[MetricsInput]] = defaultdict(list)
    for report in reports:
        by_month[month_of(report)].append(report)
    if not by_month:
        return [], []
    labels = months_between(min(by_month), max(by_month))[-months:]
    return labels, [program_metrics(by_month.get(label, []), now) for label in labels]
