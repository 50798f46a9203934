"""REST: the full evidence list behind a report's Timeline section."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from postmortem.api.auth import require
from postmortem.api.services import Services, get_services
from postmortem.api.visibility import visible_postmortem
from postmortem.evidence.models import EntryKind, EvidenceSource, SourceStatus, TimelineEntry
from postmortem.store.tokens import Role, TokenInfo

router = APIRouter(prefix="/api/postmortems/{postmortem_id}/timeline", tags=["timeline"])


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    total: int
    next_offset: int | None
    sources: list[SourceStatus]


@router.get("", response_model=TimelinePage)
async def get_timeline(
    postmortem_id: str,
    services: Annotated[Services, Depends(get_services)],
    token: Annotated[TokenInfo, Depends(require(Role.VIEWER))],
    kind: Annotated[list[EntryKind] | None, Query(description="repeat to allow several kinds")] = None,
    source: Annotated[list[EvidenceSource] | None, Query(description="repeat to allow several sources")] = None,
    limit: int = Query(default=500, ge=1, le=5000),
    offset: int = Query(default=0, ge=0),
) -> TimelinePage:
    await visible_postmortem(services, postmortem_id, token)  # 404 for an unknown (or hidden) report
    evidence = services.store.evidence
    page = await evidence.entries(postmortem_id, kinds=kind, sources=source, limit=limit + 1, offset=offset)
    total = await evidence.count(postmortem_id, kinds=kind, sources=source)
    return TimelinePage(
        items=page[:limit],
        total=total,
        next_offset=offset + limit if len(page) > limit else None,
        sources=await evidence.statuses(postmortem_id),
    )
