"""The API in-process over real parts: SQLite store, Temporal dev server, a running worker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.relay import Relay
from postmortem.app.settings import Settings
from postmortem.app.worker import build_worker
from postmortem.config import OpsgenieSettings, PagerDutySettings, StoreSettings, TemporalSettings
from postmortem.incident.teams_file import parse_teams
from postmortem.store.store import Store
from postmortem.store.tokens import Role

PD_SECRET = "pd-secret-for-tests"
OPSGENIE_TOKEN = "opsgenie-token-for-tests"
TEAMS = """
[default]
timezone = "Europe/Berlin"

[people]
"Pat Teamsfile" = "pat@example.com"
"""
TEAMS_PERSON = "pat@example.com"  # known from the teams file only (no token): may be named a reviewer


@dataclass
class Api:
    http: httpx.AsyncClient
    store: Store
    env: WorkflowEnvironment
    tokens: dict[Role, str]
    app: FastAPI

    def auth(self, role: Role = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest_asyncio.fixture
async def api(dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(dev_env, sqlite_store, tmp_path) as started:
        yield started


@contextlib.asynccontextmanager
async def running_api(
    env: WorkflowEnvironment, store: Store, tmp_path: Path, *, teams: str = TEAMS, **sections: Any
) -> AsyncIterator[Api]:
    """The app, its worker and its relay over `store`; `sections` replace settings sections (slack=…)."""
    settings = Settings(
        store=StoreSettings(data_dir=tmp_path),
        pagerduty=PagerDutySettings(webhook_secrets=[PD_SECRET, "older-secret"]),
        opsgenie=OpsgenieSettings(webhook_token=OPSGENIE_TOKEN),
        temporal=TemporalSettings(task_queue=f"api-{uuid.uuid4().hex}"),
        **sections,
    )
    config = parse_teams(teams)
    gateway = TemporalGateway("unused", "default", settings.temporal.task_queue, client=env.client)
    app = create_app(Services(settings=settings, store=store, temporal=gateway, teams=config))
    now = datetime.now(UTC)
    tokens = {role: (await store.tokens.create(role.value, role, now))[1] for role in Role}
    worker = build_worker(
        env.client, task_queue=settings.temporal.task_queue, store=store, teams=config, settings=settings
    )
    async with worker, relaying(store, gateway, settings):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http=http, store=store, env=env, tokens=tokens, app=app)


@contextlib.asynccontextmanager
async def relaying(store: Store, gateway: TemporalGateway, settings: Settings) -> AsyncIterator[Relay]:
    """The inbox relay beside the app, as `postmortem api` runs it: webhooks only commit, it starts workflows."""
    relay = Relay(store, gateway, settings.inbox)
    task = asyncio.create_task(relay.run(), name="relay")
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
