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
    from postmortem.incident.teams import TeamSettings
    from postmortem.meeting.models import Meeting
    from postmortem.models import Incident
    from postmortem.workflows.options import DELIVERY_OPTIONS, STEP_RETRY
    from postmortem.workflows.state import PostmortemState

CHANNELS: tuple[Literal["email"], Literal["caldav"]] = ("email", "caldav")
PLAN_TIMEOUT = timedelta(minutes=2)


def channels(team: TeamSettings | None) -> list[Literal["email", "caldav"]]:
    """The channels an invite goes out on: those the worker can send on, as resolve_team recorded them
    (a team resolved before that was known: every channel, each a no-op when unconfigured). Read from
    the history, so a replay takes the same turns."""
    if team is None or team.invite_channels is None:
        return list(CHANNELS)
    return [channel for channel in CHANNELS if channel in team.invite_channels]


async def plan(state: PostmortemState, incident: Incident) -> Meeting:
    """Planned in the worker itself (a local activity: no round trip to the server) when no calendar is
    configured, since the plan is then only the store's; with CalDAV's free/busy, a regular activity."""
    team = state.team
    assert team is not None
    request = PlanMeetingInput(
        postmortem_id=state.postmortem_id,
        title=incident.title,
        severity=incident.severity,
        resolved_at=incident.resolved_at,
        language=team.language,
        team=team,
        now=workflow.now(),
    )
    if team.invite_channels is not None and "caldav" not in team.invite_channels:
        return await workflow.execute_local_activity_method(
            MeetingActivities.plan_meeting, request, start_to_close_timeout=PLAN_TIMEOUT, retry_policy=STEP_RETRY
        )
    return await workflow.execute_activity_method(
        MeetingActivities.plan_meeting, request, start_to_close_timeout=PLAN_TIMEOUT, retry_policy=STEP_RETRY
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
