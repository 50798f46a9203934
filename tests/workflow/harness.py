"""One report's workflow with the outside world it talks to, for the workflow tests of its whole life:
a real store, a real worker, and loopback stand-ins for SMTP (aiosmtpd), Slack and GitHub that can be
broken and healed (`fail_with` / `heal`, tests/fakes)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from postmortem.app.settings import Settings
from postmortem.app.worker import build_worker
from postmortem.config import GitHubSettings, LlmSettings, ServerSettings, SlackSettings, SmtpSettings, TicketsSettings
from postmortem.incident.teams_file import parse_teams
from postmortem.review.lifecycle import Actor, ReportFacts
from postmortem.review.problems import Problem
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import DocumentEdited, PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.fakes.github import FakeGitHub, github_app
from tests.fakes.serve import serve_app
from tests.fakes.slack import FakeSlack, slack_app
from tests.fakes.smtp_server import Inbox, smtp_inbox
from tests.support import eventually

CHANNEL = "C0INCIDENTS"
TEAMS = f"""
[default]
slack_channel = "{CHANNEL}"
tracker = "github"
organizer = "lead@example.com"
remind_submit_hours = 48
remind_reviewers_hours = 24
publish_deadline_days = 14

[services.pig208]
owners = ["owner@example.com"]

[slack_users]
"owner@example.com" = "U0OWNER"
"""
EDITOR = Actor(name="editor@example.com", role="editor")
ADMIN = Actor(name="admin@example.com", role="admin")
ALICE = Actor(name="alice@example.com", role="reviewer")
BOB = Actor(name="bob@example.com", role="viewer")


@dataclass
class World:
    env: WorkflowEnvironment
    store: Store
    inbox: Inbox
    slack: FakeSlack
    github: FakeGitHub
    handle: WorkflowHandle[Any, Any]
    postmortem_id: str
    task_queue: str

    async def update(self, update: Any, request: Any) -> Any:
        return await self.handle.execute_update(update, request)

    async def problem(self, step: str, target: str | None = None, *, state: str | None = None) -> Problem:
        """The report's problem of `step` (on `target`), once it is stored (in `state`, if given)."""

        async def stored() -> Problem | None:
            for problem in await self.store.problems.list(self.postmortem_id):
                if problem.step == step and target in (None, problem.target) and state in (None, problem.state):
                    return problem
            return None

        return await eventually(stored, timeout=30)

    async def running(self) -> bool:
        return (await self.handle.describe()).status == WorkflowExecutionStatus.RUNNING

    def announcements(self) -> list[str]:
        return [m["text"] for m in self.slack.posted if "Post-mortem published" in m["text"]]


@contextlib.asynccontextmanager
async def world(
    env: WorkflowEnvironment,
    store: Store,
    *,
    resolved_at: datetime | None = None,
    history_threshold: int | None = None,
    teams: str = TEAMS,
    broken: Callable[[Inbox, FakeSlack, FakeGitHub], object] | None = None,
    llm: LlmSettings | None = None,
) -> AsyncIterator[World]:
    """A report drafted (its meeting planned) for a fresh incident resolved `resolved_at` (now by default,
    so no reminder is due yet), with every fake healthy until the test breaks one (`broken` breaks them
    before the workflow starts: its first invite or reminder then meets the outage)."""
    slack, github = FakeSlack(), FakeGitHub()
    slack.channels[CHANNEL] = []
    with smtp_inbox() as inbox:
        if broken is not None:
            broken(inbox, slack, github)
        async with serve_app(slack_app(slack)) as slack_url, serve_app(github_app(github)) as github_url:
            settings = Settings(
                smtp=SmtpSettings(host=inbox.host, port=inbox.port, starttls=False, sender="postmortem@example.com"),
                slack=SlackSettings(api_url=f"{slack_url}/api", bot_token=slack.token),
                tickets=TicketsSettings(
                    github=GitHubSettings(api_url=github_url, token=github.token, repo=github.repo)
                ),
                server=ServerSettings(public_url="https://pm.example.com"),
                llm=llm or LlmSettings(),
            )
            task_queue = f"life-{uuid.uuid4().hex}"
            async with build_worker(
                env.client, task_queue=task_queue, store=store, teams=parse_teams(teams), settings=settings
            ):
                incident = f"PLIFE{uuid.uuid4().hex[:6].upper()}"
                pm_id = postmortem_id_for("pagerduty", incident)
                event = pagerduty_event(incident, resolved_at=resolved_at or datetime.now(UTC))
                extra = {"history_threshold": history_threshold} if history_threshold else {}
                handle = await env.client.start_workflow(
                    PostmortemWorkflow.run,
                    PostmortemWorkflowInput(postmortem_id=pm_id, event=event, **extra),
                    id=workflow_id_for(pm_id),
                    task_queue=task_queue,
                )
                yield World(env, store, inbox, slack, github, handle, pm_id, task_queue)
                for workflow_id in (workflow_id_for(pm_id), f"followup-{pm_id}"):
                    try:
                        await env.client.get_workflow_handle(workflow_id).terminate("test over")
                    except RPCError as exc:  # the test let it finish, or it never started
                        if exc.status != RPCStatusCode.NOT_FOUND:
                            raise


async def edit(report: World, title: str, *, tell: bool = True) -> int:
    """A person's edit of the document (as the API makes it); `tell`: the API's signal got through."""
    pm = await report.store.postmortems.get(report.postmortem_id)
    changed = await report.store.postmortems.update(
        pm.id, pm.version, PostmortemChanges(title=title), datetime.now(UTC)
    )
    if tell:
        await report.handle.signal(
            PostmortemWorkflow.document_edited, DocumentEdited(version=changed.version, by=EDITOR.name)
        )
    return changed.version


async def facts(report: World) -> ReportFacts:
    return ReportFacts(version=(await report.store.postmortems.get(report.postmortem_id)).version)


async def drafted(world: World) -> None:
    """The draft exists and its meeting's invites were handled (sent, or a problem)."""

    async def ready() -> bool:
        meeting = await world.handle.query(PostmortemWorkflow.meeting)
        if meeting is None:
            return False
        keys = [key for key, _ in await world.store.meetings.deliveries(world.postmortem_id) if ":invite:" in key]
        return bool(keys) or bool(await world.store.problems.list(world.postmortem_id))

    await eventually(ready, timeout=30)
