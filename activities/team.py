"""Step: find the team configuration that applies to an incident."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from postmortem.incident.teams import TeamsConfig, TeamSettings
from postmortem.models import Incident


class ResolveTeamInput(BaseModel):
    incident: Incident


class TeamActivities:
    def __init__(self, teams: TeamsConfig, *, narrative: bool = False) -> None:
        """`narrative`: the model step is configured (the workflow runs it only then)."""
        self._teams = teams
        self._narrative = narrative

    @activity.defn(name="resolve_team")
    async def resolve_team(self, input: ResolveTeamInput) -> TeamSettings:
        settings = self._teams.resolve(input.incident)
        settings.narrative = self._narrative
        return settings
