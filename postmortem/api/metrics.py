"""REST: `/api/metrics`, the program-level figures across post-mortems (computed in review/program_metrics)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from postmortem.api.deps import StoreDep, Viewer, reader
from postmortem.api.limits import IsoDateTime
from postmortem.review.program_metrics import MetricsInput, ProgramMetrics, program_metrics
from postmortem.store.postmortems import PostmortemFilter
from postmortem.store.store import Store

router = APIRouter(prefix="/api/metrics", tags=["metrics"])


@router.get("", response_model=ProgramMetrics)
async def program(
    store: StoreDep,
    token: Viewer,
    from_: Annotated[IsoDateTime | None, Query(alias="from", description="created at or after (ISO 8601)")] = None,
    to: Annotated[IsoDateTime | None, Query(description="created before (ISO 8601)")] = None,
    team: str | None = None,
    service: str | None = None,
) -> ProgramMetrics:
    """Created, completion rate, time to publish, action items on time and overdue, TTD/TTR, recurrence,
    and trends (cause categories, most affected services, team completion rates), over the reports the caller
    may see: a report hidden from them is counted nowhere."""
    filters = PostmortemFilter(viewer=reader(token), team=team, service=service, created_from=from_, created_to=to)
    return program_metrics(await visible_reports(store, filters), datetime.now(UTC))


async def visible_reports(store: Store, filters: PostmortemFilter) -> list[MetricsInput]:
    """Every report `filters` lets through (the caller's visibility included), with its review and
    follow-up checks: what `program_metrics` counts, for this route and the metrics page alike."""
    reports: list[MetricsInput] = []
    cursor = None
    while True:
        page, cursor = await store.postmortems.list(filters, limit=200, cursor=cursor)
        for pm in page:
            reports.append((pm, await store.review.get(pm.id), await store.follow_ups.list(pm.id)))
        if cursor is None:
            return reports
