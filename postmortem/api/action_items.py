"""REST: the action items of one post-mortem. They stay editable in every status."""

from __future__ import annotations

import contextlib
import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from postmortem.api.deps import (
    EditableReport,
    Editor,
    GatewayDep,
    ServicesDep,
    StoreDep,
    Viewer,
    VisibleReport,
    reader,
)
from postmortem.api.errors import STALE
from postmortem.api.etags import IfMatchHeader, etag, required_version
from postmortem.api.limits import IsoDate
from postmortem.app.gateway import TemporalUnavailable, WorkflowGone
from postmortem.models import ActionItem, ActionItemStatus, Priority, Status
from postmortem.workflows.inputs import ActionItemEdited
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

router = APIRouter(prefix="/api/postmortems/{postmortem_id}/action-items", tags=["action items"])


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value.strip() if value is not None else None


class ActionItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=10_000)
    owner: str | None = Field(default=None, max_length=320)
    due_date: IsoDate | None = None
    priority: Priority = Priority.MEDIUM
    status: ActionItemStatus = ActionItemStatus.OPEN

    _strip = field_validator("description", "owner")(_not_blank)


class ActionItemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, min_length=1, max_length=10_000)
    owner: str | None = Field(default=None, max_length=320)
    due_date: IsoDate | None = None
    priority: Priority | None = None
    status: ActionItemStatus | None = None

    _strip = field_validator("description", "owner")(_not_blank)


class ActionItemList(BaseModel):
    items: list[ActionItem]


@router.get("", response_model=ActionItemList)
async def list_action_items(pm: VisibleReport) -> ActionItemList:
    return ActionItemList(items=pm.action_items)


@router.post("", response_model=ActionItem, status_code=201)
async def create_action_item(
    pm: EditableReport, body: ActionItemCreate, response: Response, store: StoreDep, gateway: GatewayDep
) -> ActionItem:
    item = await store.postmortems.add_action_item(pm.id, **body.model_dump(), now=datetime.now(UTC))
    response.headers["ETag"] = etag(1)
    response.headers["Location"] = f"/api/postmortems/{pm.id}/action-items/{item.id}"
    pm = await store.postmortems.get(pm.id)  # its status now, after the write
    if pm.status in (Status.PUBLISHED, Status.ARCHIVED):
        with contextlib.suppress(WorkflowGone, TemporalUnavailable):  # the next follow-up check catches up
            await gateway.signal(pm.workflow_id, PostmortemWorkflow.action_items_changed, None)
    return item


@router.get("/{item_id}", response_model=ActionItem)
async def get_action_item(pm: VisibleReport, item_id: str, response: Response, store: StoreDep) -> ActionItem:
    item, version = await store.postmortems.get_action_item(pm.id, item_id)
    response.headers["ETag"] = etag(version)
    return item


@router.patch("/{item_id}", response_model=ActionItem, responses=STALE)
async def patch_action_item(
    pm: EditableReport,
    item_id: str,
    body: ActionItemPatch,
    response: Response,
    store: StoreDep,
    gateway: GatewayDep,
    token: Editor,
    if_match: IfMatchHeader = None,
) -> ActionItem:
    values = body.model_dump(exclude_unset=True)
    for key in ("priority", "status"):
        if values.get(key) is not None:
            values[key] = values[key].value
    before, _ = await store.postmortems.get_action_item(pm.id, item_id)
    item, version = await store.postmortems.update_action_item(
        pm.id, item_id, required_version(if_match), values, datetime.now(UTC)
    )
    response.headers["ETag"] = etag(version)
    if item.ticket_key and _pushed(before) != _pushed(item):
        # Its ticket is told by the workflow; a change that came from the ticket (its webhook) never
        # passes here, so it is never pushed back. The next follow-up sync reads the ticket anyway.
        with contextlib.suppress(WorkflowGone, TemporalUnavailable):
            await gateway.signal(
                pm.workflow_id, PostmortemWorkflow.action_item_edited, ActionItemEdited(item_id=item.id, by=token.name)
            )
    return item


def _pushed(item: ActionItem) -> tuple[object, ...]:
    """What of an item its ticket is told."""
    return (item.status, item.owner, item.due_date)


@router.delete("/{item_id}", status_code=204)
async def delete_action_item(pm: EditableReport, item_id: str, store: StoreDep) -> Response:
    await store.postmortems.delete_action_item(pm.id, item_id, datetime.now(UTC))
    return Response(status_code=204)


overview = APIRouter(prefix="/api/action-items", tags=["action items"])


class ActionItemRow(ActionItem):
    postmortem_id: str
    postmortem_title: str = Field(description="the report's title")
    postmortem_url: str = Field(description="where the report is read (its Markdown rendering)")
    team: str | None
    overdue: bool


@overview.get(
    "",
    response_model=list[ActionItemRow],
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
async def all_action_items(
    store: StoreDep,
    services: ServicesDep,
    token: Viewer,
    status: ActionItemStatus | None = None,
    owner: str | None = None,
    priority: Priority | None = None,
    team: str | None = None,
    overdue: bool = False,
    due_from: IsoDate | None = None,
    due_to: IsoDate | None = None,
    format: Literal["json", "csv"] = "json",
    limit: Annotated[int | None, Query(ge=1, le=1000, description="at most this many (all when absent)")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="skip this many first")] = 0,
) -> list[ActionItemRow] | Response:
    """Action items across the reports the caller may see, overdue ones flagged; CSV for the tracking meeting.

    In due-date order (none last); `limit` and `offset` read one page of that order."""
    today = datetime.now(UTC).date()
    found = await store.postmortems.action_items(
        status=status,
        owner=owner,
        priority=priority,
        team=team,
        due_from=due_from,
        due_to=due_to,
        overdue_on=today if overdue else None,
        viewer=reader(token),
        limit=limit,
        offset=offset,
    )
    base = services.settings.server.resolved_public_url
    rows = [
        ActionItemRow(
            **item.model_dump(),
            postmortem_id=pm_id,
            postmortem_title=pm_title,
            postmortem_url=f"{base}/api/postmortems/{pm_id}?format=markdown",
            team=pm_team,
            overdue=bool(
                item.due_date
                and item.due_date < today
                and item.status in (ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS)
            ),
        )
        for pm_id, pm_team, item, pm_title in found
    ]
    if format == "json":
        return rows
    return _csv(rows)


async def count_action_items(
    store: StoreDep,
    token: Viewer,
    status: ActionItemStatus | None = None,
    owner: str | None = None,
    team: str | None = None,
    overdue: bool = False,
) -> tuple[int, int]:
    """How many rows `all_action_items` has with these filters, and how many are overdue (the board's totals)."""
    today = datetime.now(UTC).date()
    return await store.postmortems.count_action_items(
        today=today, status=status, owner=owner, team=team, overdue_on=today if overdue else None, viewer=reader(token)
    )


def _csv(rows: list[ActionItemRow]) -> Response:
    buffer = io.StringIO()
    columns = [
        "postmortem_id",
        "postmortem_title",
        "postmortem_url",
        "team",
        "id",
        "description",
        "owner",
        "due_date",
        "priority",
        "status",
        "overdue",
        "ticket_key",
        "ticket_url",
        "completed_at",
    ]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.model_dump(mode="json").items()})
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="action-items.csv"'},
    )
