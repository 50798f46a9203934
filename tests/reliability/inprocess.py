"""The app in-process over real parts with every webhook configured, for the hostile-input and property tests.

Each webhook gets a secret or token, so a test can authenticate any body it sends and the parser is
reached (`Target.auth` signs exactly the bytes sent). With a Temporal client the worker and the inbox
relay run beside the app, as `postmortem api` runs them, so a delivery answered 202 can be followed
to its report; without one the gateway points at a port nothing listens on, which is all a test of
refusals needs (a refused request never reaches Temporal).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from temporalio.client import Client

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.app.worker import build_worker
from postmortem.config import (
    AlertmanagerSettings,
    GitHubSettings,
    JiraSettings,
    JsmSettings,
    LimitsSettings,
    LinearSettings,
    OpsgenieSettings,
    PagerDutySettings,
    StoreSettings,
    TemporalSettings,
    TicketsSettings,
)
from postmortem.incident.teams import TeamsConfig
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from postmortem.webhooks.pagerduty_signature import sign
from tests.api.conftest import relaying
from tests.support import free_port

PD_SECRET = "hostile-pagerduty-secret"
OPSGENIE_TOKEN = "hostile-opsgenie-token"
ALERTMANAGER_TOKEN = "hostile-alertmanager-token"
GITHUB_SECRET = "hostile-github-secret"
LINEAR_SECRET = "hostile-linear-secret"
JIRA_TOKEN = "hostile-jira-token"
JSM_TOKEN = "hostile-jsm-token"

WEBHOOKS = ("pagerduty", "opsgenie", "jsm", "alertmanager", "github", "jira", "linear")


def _hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_auth(source: str, body: bytes) -> dict[str, str]:
    """The headers that authenticate `body` at /webhooks/<source> (a signature over these very bytes)."""
    headers = {
        "pagerduty": {"X-PagerDuty-Signature": sign(body, PD_SECRET)},
        "opsgenie": {"X-Postmortem-Token": OPSGENIE_TOKEN},
        "jsm": {"Authorization": f"Bearer {JSM_TOKEN}"},
        "alertmanager": {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"},
        "github": {"X-Hub-Signature-256": "sha256=" + _hmac(GITHUB_SECRET, body), "X-GitHub-Event": "issues"},
        "jira": {"X-Postmortem-Token": JIRA_TOKEN},
        "linear": {"Linear-Signature": _hmac(LINEAR_SECRET, body)},
    }[source]
    return {"Content-Type": "application/json", **headers}


def settings_for(tmp_path: Path, limits: LimitsSettings | None = None) -> Settings:
    return Settings(
        store=StoreSettings(data_dir=tmp_path),
        limits=limits or LimitsSettings(),
        pagerduty=PagerDutySettings(webhook_secrets=[PD_SECRET]),
        opsgenie=OpsgenieSettings(webhook_token=OPSGENIE_TOKEN),
        jsm=JsmSettings(webhook_token=JSM_TOKEN),
        alertmanager=AlertmanagerSettings(webhook_token=ALERTMANAGER_TOKEN),
        tickets=TicketsSettings(
            github=GitHubSettings(webhook_secret=GITHUB_SECRET),
            linear=LinearSettings(webhook_secret=LINEAR_SECRET),
            jira=JiraSettings(webhook_token=JIRA_TOKEN),
        ),
        temporal=TemporalSettings(task_queue=f"hostile-{uuid.uuid4().hex}"),
    )


@dataclass
class Target:
    http: httpx.AsyncClient
    app: FastAPI
    store: Store
    admin: dict[str, str]

    def auth(self, path: str, body: bytes) -> dict[str, str]:
        """Headers that get `body` past the route's authentication: a webhook's signature, or the admin token."""
        if path.startswith("/webhooks/"):
            return webhook_auth(path.removeprefix("/webhooks/"), body)
        return {**self.admin, "Content-Type": "application/json"}


@contextlib.asynccontextmanager
async def in_process(
    store: Store, tmp_path: Path, temporal: Client | None = None, limits: LimitsSettings | None = None
) -> AsyncIterator[Target]:
    settings = settings_for(tmp_path, limits)
    if temporal is None:
        gateway = TemporalGateway(f"127.0.0.1:{free_port()}", "default", settings.temporal.task_queue)
    else:
        gateway = TemporalGateway("unused", "default", settings.temporal.task_queue, client=temporal)
    teams = TeamsConfig()
    app = create_app(Services(settings=settings, store=store, temporal=gateway, teams=teams))
    _, secret = await store.tokens.create("admin@example.com", Role.ADMIN, datetime.now(UTC))
    admin = {"Authorization": f"Bearer {secret}"}
    async with contextlib.AsyncExitStack() as stack:
        if temporal is not None:
            worker = build_worker(
                temporal, task_queue=settings.temporal.task_queue, store=store, teams=teams, settings=settings
            )
            await stack.enter_async_context(worker)
            await stack.enter_async_context(relaying(store, gateway, settings))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60)
        )
        yield Target(http=http, app=app, store=store, admin=admin)
