"""REST: the inbox of webhook deliveries (admins only): what waits for Temporal, what was relayed, what failed.

Entries are listed without their raw bodies (those stay in the store, as evidence and for the relay).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from postmortem.api.deps import Admin, StoreDep
from postmortem.store.inbox import InboxEntry, InboxState

router = APIRouter(prefix="/api/inbox", tags=["inbox"])


class InboxPage(BaseModel):
    items: list[InboxEntry] = Field(description="newest first")
    counts: dict[InboxState, int] = Field(description="how many entries are in each state, over the whole inbox")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last one")


@router.get("", response_model=InboxPage)
async def list_inbox(
    store: StoreDep,
    _: Admin,
    state: Annotated[InboxState | None, Query(description="only entries in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(pattern=r"^[1-9][0-9]{0,17}$", description="the `next_cursor` of the previous page")
    ] = None,
) -> InboxPage:
    items, before = await store.inbox.list(state, limit=limit, before=int(cursor) if cursor else None)
    return InboxPage(items=items, counts=await store.inbox.counts(), next_cursor=str(before) if before else None)
