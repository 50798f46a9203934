"""The worker is killed right after the tracker created a ticket and before we recorded it: the
restarted worker finds that ticket by its marker, and every action item ends with exactly one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from postmortem.models import ActionItemStatus, Priority
from postmortem.review.lifecycle import Actor
from postmortem.store.postmortems import NotFound
from postmortem.store.store import Store
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import DecisionRequest, PostmortemWorkflowInput, SubmitRequest
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.fakes.github import FakeGitHub, github_app
from tests.fakes.serve import serve_app
from tests.support import binary, eventually, free_port

pytestmark = pytest.mark.e2e


def hold_after_create(app, created: asyncio.Event, release: asyncio.Event):
    """GitHub makes the issue, then its answer is held back (as if the network died on the way)."""

    async def wrapped(scope, receive, send):
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].endswith("/issues")
            and not release.is_set()
        ):

            async def held(message):
                if message["type"] == "http.response.start":
                    created.set()
                    await release.wait()
                await send(message)

            return await app(scope, receive, held)
        return await app(scope, receive, send)

    return wrapped


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "postmortem"), "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def test_a_worker_killed_after_create_never_makes_a_second_ticket(tmp_path: Path) -> None:
    fake = FakeGitHub()
    created, release = asyncio.Event(), asyncio.Event()
    port = free_port()
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, ui=False, port=port, dev_server_existing_path=binary("temporal")
    )
    database = tmp_path / "store.db"
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    (tmp_path / "teams.toml").write_text('[default]\ntracker = "github"\n')
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with serve_app(hold_after_create(github_app(fake), created, release)) as github_url:
            worker_env = {
                **os.environ,
                "POSTMORTEM_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
                "POSTMORTEM_TEMPORAL_TASK_QUEUE": f"tickets-{uuid.uuid4().hex}",
                "POSTMORTEM_DATA_DIR": str(tmp_path),
                "POSTMORTEM_DATABASE_URL": f"sqlite:///{database}",
                "POSTMORTEM_TEAMS_FILE": str(tmp_path / "teams.toml"),
                "POSTMORTEM_GITHUB_API_URL": github_url,
                "POSTMORTEM_GITHUB_TOKEN": fake.token,
                "POSTMORTEM_GITHUB_REPO": fake.repo,
                "POSTMORTEM_GATHER_HEARTBEAT_SECONDS": "2",
                "POSTMORTEM_LOG_LEVEL": "WARNING",
            }
            log = tmp_path / "workers.log"
            workers.append(start_worker(worker_env, log))
            pm_id = postmortem_id_for("pagerduty", "PTKILL")
            handle = await env.client.start_workflow(
                PostmortemWorkflow.run,
                PostmortemWorkflowInput(
                    postmortem_id=pm_id, event=pagerduty_event("PTKILL", resolved_at=datetime.now(UTC))
                ),
                id=workflow_id_for(pm_id),
                task_queue=worker_env["POSTMORTEM_TEMPORAL_TASK_QUEUE"],
            )

            async def reviewable() -> bool:
                assert workers[0].poll() is None, log.read_text()
                try:
                    await store.postmortems.get(pm_id)
                except NotFound:
                    return False
                return await handle.query(PostmortemWorkflow.review) is not None

            await eventually(reviewable, timeout=60)
            for description in ("Lower the DNS TTL", "Alert on replication lag"):
                await store.postmortems.add_action_item(
                    pm_id,
                    description=description,
                    owner=None,
                    due_date=None,
                    priority=Priority.HIGH,
                    status=ActionItemStatus.OPEN,
                    now=datetime.now(UTC),
                )
            editor, alice = Actor(name="e@example.com", role="editor"), Actor(name="a@example.com", role="reviewer")
            await handle.execute_update(PostmortemWorkflow.submit, SubmitRequest(actor=editor, reviewers=[alice.name]))
            publishing = asyncio.create_task(
                handle.execute_update(PostmortemWorkflow.approve, DecisionRequest(actor=alice))
            )

            await asyncio.wait_for(created.wait(), timeout=60)  # GitHub made the first ticket …
            workers[0].send_signal(signal.SIGKILL)  # … and the worker dies before hearing about it
            workers[0].wait(timeout=10)
            assert fake.created == 1
            release.set()
            workers.append(start_worker(worker_env, log))

            async def ticketed() -> bool:
                items = (await store.postmortems.get(pm_id)).action_items
                return all(item.ticket_key for item in items)

            await eventually(ticketed, timeout=90, interval=0.2)
            await publishing
            items = (await store.postmortems.get(pm_id)).action_items
            assert fake.created == 2 and len(fake.issues) == 2  # one ticket per item, none twice
            assert sorted(item.ticket_key or "" for item in items) == sorted(f"{fake.repo}#{n}" for n in fake.issues)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
        await store.close()
        await env.shutdown()
