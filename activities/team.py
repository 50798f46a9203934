"""Step: find the team configuration that applies to an incident."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from postmortem.incident.teams import TeamsConfig, TeamSettings
from postmortem.models import Incident


class ResolveTeamInput(BaseModel):
    incident: Incident


class TeamActivities:
    def __init__(
        self,
        teams: TeamsConfig,
        *,
        narrative: bool = False,
        unreachable_sources: dict[str, str] | None = None,
        invite_channels: list[str] | None = None,
    ) -> None:
        """What the worker is configured for, which the workflow follows: `narrative` (the model step),
        `unreachable_sources` (source → the settings it lacks) and `invite_channels`. None: not known,
        and the workflow schedules every gather and delivery."""
        self._teams = teams
        self._narrative = narrative
        self._unreachable = unreachable_sources
        self._channels = invite_channels

    @activity.defn(name="resolve_team")
    async def resolve_team(self, input: ResolveTeamInput) -> TeamSettings:
        settings = self._teams.resolve(input.incident)
        settings.narrative = self._narrative
        settings.unreachable_sources = None if self._unreachable is None else dict(self._unreachable)
        settings.invite_channels = None if self._channels is None else list(self._channels)
        return settings
