"""What the HTTP handlers need, in one object on `app.state`, so tests can build it with real parts."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.incident.teams import TeamsConfig
from postmortem.store.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    temporal: TemporalGateway
    teams: TeamsConfig


async def get_services(request: Request) -> Services:
    """Async so FastAPI does not hop to a worker thread for every request just to read app state."""
    return request.app.state.services
