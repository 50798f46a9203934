"""REST: `/api/metrics`, the program-level figures across post-mortems (counted in SQL: store/program_metrics)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from postmortem.api.deps import StoreDep, Viewer, reader
from postmortem.api.limits import IsoDateTime
from postmortem.review.program_metrics import ProgramMetrics
from postmortem.store.postmortems import PostmortemFilter

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
    return await store.metrics.program(filters, datetime.now(UTC))
