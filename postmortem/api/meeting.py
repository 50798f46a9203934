"""REST: the review meeting — read it, download the invite, move it (through the workflow)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from postmortem.api.deps import EditableReport, Editor, GatewayDep, ServicesDep, StoreDep, VisibleReport
from postmortem.api.errors import TEMPORAL_UNAVAILABLE, WORKFLOW_REFUSED
from postmortem.api.limits import IsoDateTime
from postmortem.meeting.invite import meeting_invite
from postmortem.meeting.models import Meeting
from postmortem.models import Postmortem
from postmortem.store.store import Store
from postmortem.workflows.inputs import RescheduleRequest
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

router = APIRouter(prefix="/api/postmortems/{postmortem_id}", tags=["meeting"])


class MeetingChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: IsoDateTime
    force: bool = Field(default=False, description="move it even outside the team's working hours (else 409)")


async def _meeting(store: Store, pm: Postmortem) -> Meeting:
    meeting = await store.meetings.get(pm.id)
    if meeting is None:
        raise HTTPException(404, f"post-mortem {pm.id!r} has no review meeting (yet)")
    return meeting


@router.get("/meeting", response_model=Meeting)
async def get_meeting(pm: VisibleReport, store: StoreDep) -> Meeting:
    return await _meeting(store, pm)


@router.get(
    "/meeting.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "the current invite (RFC 5545)"}},
)
async def download_invite(postmortem_id: str, pm: VisibleReport, services: ServicesDep) -> Response:
    meeting = await _meeting(services.store, pm)
    ics = meeting_invite(meeting, datetime.now(UTC))
    return Response(
        ics,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{postmortem_id}-review.ics"'},
    )


@router.post("/meeting", response_model=Meeting, responses={409: WORKFLOW_REFUSED, 503: TEMPORAL_UNAVAILABLE})
async def reschedule_meeting(
    pm: EditableReport,
    change: MeetingChange,
    gateway: GatewayDep,
    token: Editor,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Meeting:
    """Moves the meeting: same UID, next SEQUENCE, every attendee updated. 409 says why not; a time
    outside the team's working hours needs `"force": true` (the 409 names the hours and time zone)."""
    update_id = f"reschedule-{idempotency_key}" if idempotency_key else None
    return await gateway.update(
        pm.workflow_id,
        PostmortemWorkflow.reschedule,
        RescheduleRequest(start=change.start, requested_by=token.name, force=change.force),
        update_id,
    )
