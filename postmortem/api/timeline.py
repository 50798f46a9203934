"""REST: the full evidence list behind a report's Timeline section."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from postmortem.api.deps import StoreDep, VisibleReport
from postmortem.evidence.models import EntryKind, EvidenceSource, SourceStatus, TimelineEntry

router = APIRouter(prefix="/api/postmortems/{postmortem_id}/timeline", tags=["timeline"])


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    total: int
    next_offset: int | None
    sources: list[SourceStatus]


@router.get("", response_model=TimelinePage)
async def get_timeline(
    pm: VisibleReport,
    store: StoreDep,
    kind: Annotated[list[EntryKind] | None, Query(description="repeat to allow several kinds")] = None,
    source: Annotated[list[EvidenceSource] | None, Query(description="repeat to allow several sources")] = None,
    limit: int = Query(default=500, ge=1, le=5000),
    # Bounded, so offset + limit fits the databases' 64-bit integers (a larger one was a 500).
    offset: int = Query(default=0, ge=0, le=1_000_000_000),
) -> TimelinePage:
    evidence = store.evidence
    # The sources' states first: a source read as complete then has every entry of it already stored,
    # so the items read next include them all (read the other way round, a gather finishing in between
    # answered "complete" beside a timeline missing its last page).
    sources = await evidence.statuses(pm.id)
    page = await evidence.entries(pm.id, kinds=kind, sources=source, limit=limit + 1, offset=offset)
    total = await evidence.count(pm.id, kinds=kind, sources=source)
    return TimelinePage(
        items=page[:limit],
        total=total,
        next_offset=offset + limit if len(page) > limit else None,
        sources=sources,
    )
