"""REST: the review meeting — read it, download the invite, move it (through the workflow)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict

from postmortem.activities.meeting import MeetingActivities
from postmortem.api.auth import require
from postmortem.api.services import Services, get_services
from postmortem.api.visibility import visible_postmortem
from postmortem.meeting.models import Meeting
from postmortem.store.tokens import Role, TokenInfo
from postmortem.workflows.inputs import RescheduleRequest
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

router = APIRouter(prefix="/api/postmortems/{postmortem_id}", tags=["meeting"])


class MeetingChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime


async def _meeting(services: Services, postmortem_id: str, token: TokenInfo) -> Meeting:
    await visible_postmortem(services, postmortem_id, token)  # 404 for an unknown (or hidden) report
    meeting = await services.store.meetings.get(postmortem_id)
    if meeting is None:
        raise HTTPException(404, f"post-mortem {postmortem_id!r} has no review meeting (yet)")
    return meeting


@router.get("/meeting", response_model=Meeting)
async def get_meeting(
    postmortem_id: str,
    services: Annotated[Services, Depends(get_services)],
    token: Annotated[TokenInfo, Depends(require(Role.VIEWER))],
) -> Meeting:
    return await _meeting(services, postmortem_id, token)


@router.get(
    "/meeting.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "the current invite (RFC 5545)"}},
)
async def download_invite(
    postmortem_id: str,
    services: Annotated[Services, Depends(get_services)],
    token: Annotated[TokenInfo, Depends(require(Role.VIEWER))],
) -> Response:
    meeting = await _meeting(services, postmortem_id, token)
    ics = MeetingActivities(services.store.meetings, services.meeting_config).invite(meeting, datetime.now(UTC))
    return Response(
        ics,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{postmortem_id}-review.ics"'},
    )


@router.post("/meeting", response_model=Meeting)
async def reschedule_meeting(
    postmortem_id: str,
    change: MeetingChange,
    services: Annotated[Services, Depends(get_services)],
    token: Annotated[TokenInfo, Depends(require(Role.EDITOR))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Meeting:
    """Moves the meeting: same UID, next SEQUENCE, every attendee updated. 409 says why not."""
    pm = await services.store.postmortems.get(postmortem_id)
    update_id = f"reschedule-{idempotency_key}" if idempotency_key else None
    return await services.temporal.update(
        pm.workflow_id,
        PostmortemWorkflow.reschedule,
        RescheduleRequest(start=change.start, requested_by=token.name),
        update_id,
    )
