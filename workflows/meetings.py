"""The review meeting's activities: plan it, revise it (a new time, or cancelled), send a revision's invite."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.meeting import (
        DeliveryResult,
        MeetingActivities,
        PlanMeetingInput,
        ReviseMeetingInput,
        SendInviteInput,
    )
    from postmortem.meeting.models import Meeting
    from postmortem.models import Incident
    from postmortem.workflows.options import DELIVERY_OPTIONS, STEP_RETRY
    from postmortem.workflows.state import PostmortemState

CHANNELS: tuple[Literal["email"], Literal["caldav"]] = ("email", "caldav")


async def plan(state: PostmortemState, incident: Incident) -> Meeting:
    assert state.team is not None
    return await workflow.execute_activity_method(
        MeetingActivities.plan_meeting,
        PlanMeetingInput(
            postmortem_id=state.postmortem_id,
            title=incident.title,
            severity=incident.severity,
            resolved_at=incident.resolved_at,
            language=state.team.language,
            team=state.team,
            now=workflow.now(),
        ),
        start_to_close_timeout=timedelta(minutes=2),
        retry_policy=STEP_RETRY,
    )


async def revise(state: PostmortemState, **change: Any) -> Meeting:
    assert state.meeting is not None
    return await workflow.execute_activity_method(
        MeetingActivities.revise_meeting,
        ReviseMeetingInput(
            postmortem_id=state.postmortem_id, from_sequence=state.meeting.sequence, now=workflow.now(), **change
        ),
        start_to_close_timeout=timedelta(minutes=1),
        retry_policy=STEP_RETRY,
    )


async def send(
    postmortem_id: str,
    sequence: int,
    channel: Literal["email", "caldav"],
    options: workflow.ActivityConfig = DELIVERY_OPTIONS,
) -> DeliveryResult:
    """One channel's invite of revision `sequence` (a no-op when unconfigured, sent, or superseded)."""
    return await workflow.execute_activity_method(
        MeetingActivities.send_invite,
        SendInviteInput(postmortem_id=postmortem_id, sequence=sequence, channel=channel, now=workflow.now()),
        **options,
    )
