"""Step: find the team configuration that applies to an incident."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from postmortem.incident.teams import TeamsConfig, TeamSettings
from postmortem.models import Incident


class ResolveTeamInput(BaseModel):
    incident: Incident


class TeamActivities:
    def __init__(self, teams: TeamsConfig) -> None:
        self._teams = teams

    @activity.defn(name="resolve_team")
    async def resolve_team(self, input: ResolveTeamInput) -> TeamSettings:
        return self._teams.resolve(input.incident)
