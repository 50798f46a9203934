"""Every outside system a report talks to, as a loopback stand-in, behind the real app and worker.

`stand_ins()` starts them once (Slack, GitHub, Jira, Linear, PagerDuty as HTTP fakes; Radicale as a
real CalDAV server behind a proxy that logs what reached it); `world()` gives one test a fresh SMTP
relay, those stand-ins reset and healthy, and the API with its worker and relay configured for all
of them, so the test can break exactly one (`fail_with`) and heal it again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.app.worker import build_worker
from postmortem.config import (
    CalDavSettings,
    GitHubSettings,
    HttpSettings,
    JiraSettings,
    LinearSettings,
    OpsgenieSettings,
    PagerDutySettings,
    ServerSettings,
    SlackSettings,
    SmtpSettings,
    StoreSettings,
    TemporalSettings,
    TicketsSettings,
)
from postmortem.incident.teams_file import parse_teams
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import OPSGENIE_TOKEN, PD_SECRET, Api, relaying
from tests.fakes.github import FakeGitHub, github_app
from tests.fakes.jira import FakeJira, jira_app
from tests.fakes.linear import FakeLinear, linear_app
from tests.fakes.pagerduty import FakePagerDuty, pagerduty_app
from tests.fakes.radicale_server import Radicale, radicale_server
from tests.fakes.serve import serve_app
from tests.fakes.slack import FakeSlack, slack_app
from tests.fakes.smtp_server import Inbox, smtp_inbox

CHANNEL = "C0WORLD"
OWNER = "owner@example.com"
SMTP_LOGIN = ("mailer", "s3cret")
# Radicale answers an anonymous caller it refuses with 401 (log in, then); a logged-in one with its 403.
CALDAV_LOGIN = ("alice", "calendar-secret")
# Not forwarded by the proxy: hop-by-hop, or recomputed for the body as it is passed on (httpx decodes it).
_DROPPED = frozenset({"host", "connection", "content-length", "transfer-encoding", "content-encoding", "keep-alive"})


@dataclass(frozen=True)
class Forwarded:
    """One request the proxy passed to the CalDAV server, and the status that server answered."""

    method: str
    path: str
    status: int


class LoggingProxy:
    """An ASGI app forwarding every request to `upstream` as it came, keeping (method, path, status)."""

    def __init__(self, upstream: str) -> None:
        self.log: list[Forwarded] = []
        self._client = httpx.AsyncClient(base_url=upstream, trust_env=False, timeout=10)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        request = Request(scope, receive)
        answer = await self._client.request(
            request.method,
            scope["raw_path"].decode("latin-1") + (f"?{request.url.query}" if request.url.query else ""),
            content=await request.body(),
            headers=[(k, v) for k, v in request.headers.items() if k.lower() not in _DROPPED],
        )
        self.log.append(Forwarded(request.method, request.url.path, answer.status_code))
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in _DROPPED}
        await Response(answer.content, status_code=answer.status_code, headers=headers)(scope, receive, send)

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass
class StandIns:
    slack: FakeSlack
    github: FakeGitHub
    jira: FakeJira
    linear: FakeLinear
    pagerduty: FakePagerDuty
    radicale: Radicale
    caldav: LoggingProxy  # in front of Radicale
    urls: dict[str, str] = field(default_factory=dict)

    def reset(self) -> None:
        """Healthy and empty again (the servers keep running)."""
        for fake in (self.slack, self.github, self.jira, self.linear, self.pagerduty):
            fake.reset()
        self.slack.channels[CHANNEL] = []
        self.radicale.heal()
        self.caldav.log.clear()


@contextlib.asynccontextmanager
async def stand_ins() -> AsyncIterator[StandIns]:
    slack, github, jira, linear, pagerduty = FakeSlack(), FakeGitHub(), FakeJira(), FakeLinear(), FakePagerDuty()
    apps: dict[str, FastAPI] = {
        "slack": slack_app(slack),
        "github": github_app(github),
        "jira": jira_app(jira),
        "linear": linear_app(linear),
        "pagerduty": pagerduty_app(pagerduty),
    }
    async with contextlib.AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve_app(app)) for name, app in apps.items()}
        radicale = await stack.enter_async_context(radicale_server(credentials=CALDAV_LOGIN))
        origin, _, calendar = radicale.url.partition("/alice/")
        proxy = LoggingProxy(origin)
        stack.push_async_callback(proxy.aclose)
        urls["caldav"] = f"{await stack.enter_async_context(serve_app(proxy))}/alice/{calendar}"
        yield StandIns(slack, github, jira, linear, pagerduty, radicale, proxy, urls)


@dataclass
class World:
    api: Api
    inbox: Inbox
    outside: StandIns
    reports: list[str] = field(default_factory=list)  # ids of the reports the test drove

    @property
    def slack(self) -> FakeSlack:
        return self.outside.slack


def teams_file(tracker: str) -> str:
    return f"""
[default]
timezone = "Europe/Berlin"
slack_channel = "{CHANNEL}"
organizer = "lead@example.com"
tracker = "{tracker}"

[services.pig208]
owners = ["{OWNER}"]
"""


@contextlib.asynccontextmanager
async def world(
    env: WorkflowEnvironment,
    store: Store,
    tmp_path: Path,
    outside: StandIns,
    *,
    tracker: str = "github",
    smtp_login: bool = False,
) -> AsyncIterator[World]:
    """The API, its worker and relay (as tests/api/conftest.py runs them) over every stand-in, all healthy."""
    outside.reset()
    urls = outside.urls
    with smtp_inbox(login=SMTP_LOGIN if smtp_login else None) as inbox:
        user, password = SMTP_LOGIN if smtp_login else (None, None)
        settings = Settings(
            store=StoreSettings(data_dir=tmp_path),
            pagerduty=PagerDutySettings(
                api_url=urls["pagerduty"], api_token=outside.pagerduty.token, webhook_secrets=[PD_SECRET]
            ),
            opsgenie=OpsgenieSettings(webhook_token=OPSGENIE_TOKEN),
            temporal=TemporalSettings(task_queue=f"world-{uuid.uuid4().hex}"),
            smtp=SmtpSettings(
                host=inbox.host,
                port=inbox.port,
                starttls=False,
                username=user,
                password=password,
                sender="postmortem@example.com",
            ),
            caldav=CalDavSettings(url=urls["caldav"], username=CALDAV_LOGIN[0], password=CALDAV_LOGIN[1]),
            slack=SlackSettings(api_url=f"{urls['slack']}/api", bot_token=outside.slack.token),
            tickets=TicketsSettings(
                github=GitHubSettings(api_url=urls["github"], token=outside.github.token, repo=outside.github.repo),
                jira=JiraSettings(
                    url=urls["jira"], email=outside.jira.email, api_token=outside.jira.api_token, project="OPS"
                ),
                linear=LinearSettings(
                    api_url=f"{urls['linear']}/graphql", api_key=outside.linear.api_key, team_id=outside.linear.team_id
                ),
            ),
            server=ServerSettings(public_url="https://pm.example.com"),
            http=HttpSettings(timeout_seconds=5),
        )
        teams = parse_teams(teams_file(tracker))
        gateway = TemporalGateway("unused", "default", settings.temporal.task_queue, client=env.client)
        app = create_app(Services(settings=settings, store=store, temporal=gateway, teams=teams))
        now = datetime.now(UTC)
        tokens = {role: (await store.tokens.create(role.value, role, now))[1] for role in Role}
        worker = build_worker(
            env.client, task_queue=settings.temporal.task_queue, store=store, teams=teams, settings=settings
        )
        async with worker, relaying(store, gateway, settings):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                started = World(Api(http=http, store=store, env=env, tokens=tokens, app=app), inbox, outside)
                try:
                    yield started
                finally:
                    await _end(env, started.reports)


async def _end(env: WorkflowEnvironment, reports: list[str]) -> None:
    """The test's reports (and their follow-ups) stop with it, not with the shared dev server."""
    for pm_id in reports:
        for workflow_id in (f"postmortem-{pm_id}", f"followup-{pm_id}"):
            try:
                await env.client.get_workflow_handle(workflow_id).terminate("test over")
            except RPCError as exc:  # finished, or never started
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
