"""Crash at every step: for each activity the worker registers, the worker SIGKILLed inside it is replaced,
and the report still lives its whole life exactly once.

The life: a resolved PagerDuty incident → team, evidence, draft → the review meeting planned and invited
by email (aiosmtpd) and CalDAV (Radicale, behind a proxy that counts its PUTs) → edits of the title, the
required sections and two action items → a reschedule → submit → approvals by two reviewers → published
→ one GitHub issue per action item → the 30/60/90-day follow-up checks (and their reminders) → archived,
driven through the API in-process. The activities come from the worker's own registry (`build_worker`),
so a new one is covered without editing this file; one this life never reaches is skipped, saying so
(the life is run once without a crash first, and that run says what it reaches).

Each case kills twice, with workers from tests/reliability/crash_worker.py (ours, plus an interceptor):
the first hangs at the start of the activity's first run and is killed; the second hangs after the body
of its next run (the side effects done, Temporal not told) and is killed; the third finishes the life.
Then: one email invite and one calendar PUT per meeting revision, one ticket per action item, each
notification once, every edit and approval kept and published, the follow-up's three checks, no problem
recorded, the workflows not failed. A second set of cases kills the worker while an upstream holds back
its answer to a side effect it has made (`Hold`): the retry must not do it a second time.

Time: one time-skipping test server for the module; the follow-up's 90 days pass in `env.sleep`. Three
things of that server shape the harness, each measured:
* it does not skip time while an activity attempt is started (`env.sleep(2 min)` over an attempt with a
  20 s start-to-close timeout took 20 s of real time), so the dead worker's attempts would cost their
  timeouts (30 s to 5 min) in real time. The test does what that timeout does instead: it fails each
  attempt started by a dead worker (by activity id, as retryable, matched by `last_worker_identity`),
  and skips the retry's backoff;
* it never times out a workflow task waiting on the sticky queue of a dead worker (a real server does
  after 5 s), so a worker that is to be killed runs without a workflow cache (no sticky queue);
* it may hand a task to a dead worker's long poll before it sees the connection gone, so the test waits
  `SETTLE` after a kill before the retries are due.
Workers are forked from a zygote that has imported everything (seconds of CPU saved per worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

import postmortem.app.worker as worker_module
from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.app.temporal import ensure_search_attributes
from postmortem.app.worker import build_worker
from postmortem.config import StoreSettings, TemporalSettings
from postmortem.incident.teams_file import parse_teams
from postmortem.review.lifecycle import Decision
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.fakes.github import FakeGitHub, github_app
from tests.fakes.radicale_server import radicale_calendar
from tests.fakes.serve import serve_app
from tests.fakes.slack import FakeSlack, slack_app
from tests.fakes.smtp_server import Inbox
from tests.reliability.crash_worker import MOMENTS
from tests.support import REPO, binary, eventually, free_port

pytestmark = [pytest.mark.reliability, pytest.mark.slow]  # the slower tier: `scripts/test.sh -m slow`

EDITOR, ALICE, BOB, ADMIN = "editor@example.com", "alice@example.com", "bob@example.com", "admin@example.com"
ORGANIZER = "lead@example.com"
CHANNEL = "C0INCIDENTS"
TEAMS = f"""
[default]
tracker = "github"
slack_channel = "{CHANNEL}"
organizer = "{ORGANIZER}"
attendees = ["{ALICE}", "{BOB}"]
"""
NEW_TITLE = "Checkout outage: the DNS TTL outlived the failover"
ITEMS = ("Lower the DNS TTL to 60 s", "Alert on replication lag")
SETTLE = 0.5  # seconds after a kill for the server to drop the dead worker's polls
GRACE = 1.0  # seconds from a held answer to the kill: the worker's other steps under way finish meanwhile
WAIT = 90.0  # seconds: the longest any step of the life may take, a crash and a worker's start included
DEFINITION = "__temporal_activity_definition"  # where @activity.defn puts an activity's definition


def defined_activities() -> list[str]:
    """Every activity of the classes (and functions) the worker module wires up, by its registered name.

    Read at collection time, when no Temporal server is there to build the worker against; the
    `registry` fixture checks these against what `build_worker` really registers."""
    names: set[str] = set()
    for value in vars(worker_module).values():
        candidates = [getattr(value, a, None) for a in dir(value)] if isinstance(value, type) else [value]
        names |= {getattr(c, DEFINITION).name for c in candidates if callable(c) and hasattr(c, DEFINITION)}
    return sorted(names)


ACTIVITIES = defined_activities()


# The outside world: fakes speaking the real protocols, one set for the module, reset per life ------------


class Hold:
    """Holds back the answer to the first request of one kind, after the fake has done what it asks (the
    message accepted, the event stored, the post made), until the test released it: the moment a worker
    that dies has had its side effect but never heard so."""

    KINDS = ("invite email", "calendar PUT", "Slack post", "reminder email")

    def __init__(self) -> None:
        self.kind: str | None = None
        self.held = threading.Event()
        self.released = threading.Event()

    def arm(self, kind: str | None) -> None:
        assert kind is None or kind in self.KINDS, kind
        self.kind = kind
        self.held.clear()
        self.released.clear()

    async def hold(self, kind: str) -> None:
        """In a fake, where `kind` was just done: wait here if this is the request to hold."""
        if self.kind != kind or self.held.is_set():
            return
        self.held.set()
        while not self.released.is_set():
            await asyncio.sleep(0.01)


class HoldingInbox(Inbox):
    """The SMTP fake (tests/fakes/smtp_server.py), whose "250" for one message can be held back."""

    def __init__(self, hold: Hold, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hold = hold

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        calendar = "text/calendar" in _types(self.messages[-1])
        await self._hold.hold("invite email" if calendar else "reminder email")
        return answer


@contextlib.contextmanager
def holding_inbox(hold: Hold) -> Iterator[HoldingInbox]:
    inbox = HoldingInbox(hold, port=free_port())
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def holding_slack(app: ASGIApp, hold: Hold) -> ASGIApp:
    """The Slack fake, whose answer to one chat.postMessage (posted already) can be held back."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat.postMessage"):
            return await app(scope, receive, send)

        async def held(message: Message) -> None:
            if message["type"] == "http.response.start":
                await hold.hold("Slack post")
            await send(message)

        return await app(scope, receive, held)

    return wrapped


class CountingProxy:
    """An ASGI reverse proxy in front of Radicale that keeps every request it forwarded (and can hold back
    Radicale's answer to one PUT)."""

    def __init__(self, upstream: str, hold: Hold) -> None:
        self.upstream = "/".join(upstream.split("/", 3)[:3])  # scheme://host:port
        self.requests: list[tuple[str, str, bytes]] = []  # method, path, body
        self.http = httpx.AsyncClient(timeout=10, trust_env=False)
        self._hold = hold

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        self.requests.append((scope["method"], scope["path"], body))
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k.lower() != b"host"]
        answer = await self.http.request(
            scope["method"], f"{self.upstream}{path}" + (f"?{query}" if query else ""), content=body, headers=headers
        )
        if scope["method"] == "PUT":
            await self._hold.hold("calendar PUT")
        drop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items() if k.lower() not in drop]
        content = answer.content
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
        await send({"type": "http.response.body", "body": content})


@dataclass
class World:
    smtp: Inbox
    calendar_url: str
    calendar: CountingProxy
    github_url: str
    github: FakeGitHub
    slack_url: str
    slack: FakeSlack
    hold: Hold

    def reset(self, hold: str | None = None) -> None:
        self.smtp.messages.clear()
        self.smtp.recipients.clear()
        self.calendar.requests.clear()
        self.github.reset()
        self.slack.reset()
        self.slack.channels[CHANNEL] = []
        self.hold.arm(hold)


@pytest_asyncio.fixture(scope="module")
async def world() -> AsyncIterator[World]:
    hold = Hold()
    with holding_inbox(hold) as inbox:
        async with radicale_calendar() as radicale:
            proxy = CountingProxy(radicale, hold)
            github, slack = FakeGitHub(), FakeSlack()
            async with (
                serve_app(proxy) as proxy_url,
                serve_app(github_app(github)) as github_url,
                serve_app(holding_slack(slack_app(slack), hold)) as slack_url,
            ):
                path = radicale.split("/", 3)[3]  # alice/team/
                yield World(inbox, f"{proxy_url}/{path}", proxy, github_url, github, slack_url, slack, hold)
            hold.released.set()
            await proxy.http.aclose()


@pytest_asyncio.fixture(scope="module")
async def clock() -> AsyncIterator[WorkflowEnvironment]:
    """This module's own time-skipping server: its 90-day skips must not move other tests' clocks."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary("temporal-test-server")
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def registry(clock: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The names `build_worker` registers (a worker built, never run)."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('registry') / 'store.db'}")
    try:
        worker = build_worker(
            clock.client, task_queue=f"registry-{uuid.uuid4().hex}", store=store, teams=parse_teams(TEAMS)
        )
        return sorted(getattr(fn, DEFINITION).name for fn in worker.config()["activities"])
    finally:
        await store.close()


# Workers --------------------------------------------------------------------------------------------


class Forked:
    """A worker forked by the zygote: not our child, so it is watched, and killed, by its pid, once /proc
    says that pid is still the zygote's child (a pid freed by a dead worker may be someone else's)."""

    def __init__(self, pid: int, zygote: int) -> None:
        self.pid, self.zygote = pid, zygote

    def _stat(self) -> list[str] | None:
        try:
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return None

    def alive(self) -> bool:
        stat = self._stat()
        return stat is not None and int(stat[1]) == self.zygote and stat[0] not in ("Z", "X")

    async def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)  # no goodbye: a crash, not a shutdown
        await eventually(lambda: _true(not self.alive()), timeout=10, interval=0.01)


class Spawned:
    """`postmortem worker` itself, our child."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process, self.pid = process, process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    async def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


async def _true(value: bool) -> bool:
    return value


@dataclass
class Zygote:
    """tests/reliability/crash_worker.py's zygote: forks workers that have their imports done."""

    socket: Path
    process: subprocess.Popen[bytes]

    async def fork(self, env: dict[str, str], log: Path) -> Forked:
        assert self.process.poll() is None, f"the zygote exited with {self.process.returncode}"
        reader, writer = await asyncio.open_unix_connection(str(self.socket))
        writer.write(json.dumps({"env": env, "log": str(log)}).encode() + b"\n")
        await writer.drain()
        pid = int(await reader.readline())
        writer.close()
        await writer.wait_closed()
        return Forked(pid, self.process.pid)


@pytest_asyncio.fixture(scope="module")
async def zygote(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Zygote]:
    folder = tmp_path_factory.mktemp("zygote")
    path = folder / "zygote.sock"
    with (folder / "zygote.log").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.crash_worker", "zygote", str(path)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:

        async def listening() -> bool:
            assert process.poll() is None, (folder / "zygote.log").read_text()
            return path.exists()

        await eventually(listening, timeout=60)
        yield Zygote(path, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


# One life -------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a life left behind, for the assertions."""

    postmortem_id: str
    reached: set[str]  # activity types scheduled in the report's and the follow-up's histories
    killed: list[dict[str, Any]]  # the markers of the workers killed, in order
    lost_attempts: list[str]  # workflow/activity/id of each attempt a dead worker had started
    statuses: dict[str, WorkflowExecutionStatus | None]  # of both workflows, at the end of the life


@dataclass
class Life:
    """One report from its incident to its archive; with `activity`, the worker is killed twice inside it:
    at the start of its first run, then after the body of its next one, before Temporal heard of it."""

    env: WorkflowEnvironment
    world: World
    folder: Path
    activity: str | None
    hold: str | None = None  # or: the worker is killed while this side effect's answer is held (Hold.KINDS)
    incident: str = field(default_factory=lambda: f"PCRASH{uuid.uuid4().hex[:8].upper()}")
    zygote: Zygote | None = None
    workers: list[Forked | Spawned] = field(default_factory=list)
    killed: list[dict[str, Any]] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)  # identities of the killed workers
    lost: list[str] = field(default_factory=list)
    clock_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tokens: dict[str, str] = field(default_factory=dict)
    journal: list[str] = field(default_factory=list)  # what happened when, for a failure's message
    began: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        self.journal.append(f"{time.monotonic() - self.began:6.1f} s  {what}")

    @property
    def pm_id(self) -> str:
        return postmortem_id_for("pagerduty", self.incident)

    @property
    def workflow_ids(self) -> tuple[str, str]:
        return workflow_id_for(self.pm_id), f"followup-{self.pm_id}"

    @property
    def task_queue(self) -> str:
        return f"crash-{self.incident.lower()}"

    @property
    def log(self) -> Path:
        return self.folder / "workers.log"

    def marker(self, stage: int) -> Path:
        return self.folder / f"crash-{stage}.json"

    def go(self, stage: int) -> Path:
        return self.folder / f"go-{stage}"

    def worker_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "POSTMORTEM_TEMPORAL_ADDRESS": self.env.client.service_client.config.target_host,
            "POSTMORTEM_TEMPORAL_TASK_QUEUE": self.task_queue,
            "POSTMORTEM_DATA_DIR": str(self.folder),
            "POSTMORTEM_DATABASE_URL": f"sqlite:///{self.folder / 'store.db'}",
            "POSTMORTEM_TEAMS_FILE": str(self.folder / "teams.toml"),
            "POSTMORTEM_SMTP_HOST": self.world.smtp.host,
            "POSTMORTEM_SMTP_PORT": str(self.world.smtp.port),
            "POSTMORTEM_SMTP_STARTTLS": "false",
            "POSTMORTEM_SMTP_FROM": ORGANIZER,
            "POSTMORTEM_CALDAV_URL": self.world.calendar_url,
            "POSTMORTEM_GITHUB_API_URL": self.world.github_url,
            "POSTMORTEM_GITHUB_TOKEN": self.world.github.token,
            "POSTMORTEM_GITHUB_REPO": self.world.github.repo,
            "POSTMORTEM_SLACK_API_URL": f"{self.world.slack_url}/api",
            "POSTMORTEM_SLACK_BOT_TOKEN": self.world.slack.token,
            "POSTMORTEM_LOG_LEVEL": "WARNING",
        }

    async def start_workers(self) -> None:
        """Without a crash, `postmortem worker` itself. With one, three workers at once: the one killed at the
        activity's start, the one killed after its body (waiting for go-2), and the one that finishes the
        life (waiting for go-3)."""
        if self.activity is None and self.hold is None:
            with self.log.open("ab") as out:
                command = [str(Path(sys.executable).parent / "postmortem"), "worker"]
                self.workers.append(
                    Spawned(
                        subprocess.Popen(
                            command,
                            env=self.worker_env(),
                            cwd=REPO,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                        )
                    )
                )
            return
        assert self.zygote is not None
        if self.hold is not None:
            self.workers.append(await self.zygote.fork({**self.worker_env(), "CRASH_DOOMED": "1"}, self.log))
            self.workers.append(await self.zygote.fork({**self.worker_env(), "CRASH_GO": str(self.go(2))}, self.log))
            return
        assert self.activity is not None
        for stage, moment in enumerate(MOMENTS, start=1):
            crash = {"CRASH_ACTIVITY": self.activity, "CRASH_MOMENT": moment, "CRASH_MARKER": str(self.marker(stage))}
            go = {"CRASH_GO": str(self.go(stage))} if stage > 1 else {}
            self.workers.append(await self.zygote.fork({**self.worker_env(), **crash, **go}, self.log))
        go = {"CRASH_GO": str(self.go(len(MOMENTS) + 1))}
        self.workers.append(await self.zygote.fork({**self.worker_env(), **go}, self.log))

    async def stop_workers(self) -> None:
        for worker in self.workers:
            await worker.kill()

    def alive(self) -> None:
        """No worker died but those the test killed (one that did fails the life at once, with the log)."""
        for index, worker in enumerate(self.workers):
            if index >= len(self.killed) and not worker.alive():
                raise AssertionError(f"a worker (pid {worker.pid}) exited:\n{self.log.read_text()[-4000:]}")

    # The crashes: kill, let the next worker go, and end the attempts the dead one had started --------

    async def watch_hold(self) -> None:
        """Kill the worker while the upstream, having done it, holds back its answer."""
        hold = self.world.hold
        while not hold.held.is_set():
            await asyncio.sleep(0.02)
        await asyncio.sleep(GRACE)
        worker = self.workers[0]
        await worker.kill()
        record = {"moment": "held", "kind": self.hold, "pid": worker.pid}
        self.killed.append(record | {"identity": f"test-worker-{worker.pid}@{socket.gethostname()}"})
        self.note(f"killed while the answer to the {self.hold} was held")
        self.dead.add(self.killed[-1]["identity"])
        await asyncio.sleep(SETTLE)
        hold.released.set()
        self.go(2).touch()
        await self.end_lost_attempts()

    async def watch(self) -> None:
        if self.hold is not None:
            return await self.watch_hold()
        sweeper: asyncio.Task[None] | None = None
        try:
            for stage in range(1, len(MOMENTS) + 1):
                while not self.marker(stage).exists():
                    await asyncio.sleep(0.02)
                record = json.loads(self.marker(stage).read_text())
                worker = self.workers[stage - 1]
                assert record["pid"] == worker.pid, record
                await worker.kill()
                self.killed.append(record)
                self.note(f"killed at the {record['moment']} of {record['activity_id']}, attempt {record['attempt']}")
                self.dead.add(record["identity"])
                # The server drops the dead worker's long polls once it sees their connections close; a task
                # handed out before that is lost with the worker (an activity attempt: ended below; a workflow
                # task: its 10 s timeout, in real time). The retries must not be the ones handed out.
                await asyncio.sleep(SETTLE)
                self.go(stage + 1).touch()
                sweeper = sweeper or asyncio.create_task(self.end_lost_attempts(), name="end-lost-attempts")
            await sweeper  # type: ignore[misc]
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper

    async def end_lost_attempts(self) -> None:
        """For the rest of the life, fail every attempt started by a dead worker (or handed to its dead poll),
        as its start-to-close timeout would (a retryable failure of that attempt: Temporal schedules the
        next one), and skip the retry's backoff (1 to 5 s here) unless the story is moving the clock itself."""
        client = self.env.client
        backoff: asyncio.Task[None] | None = None
        try:
            while True:
                ended = False
                for workflow_id in self.workflow_ids:
                    try:
                        description = await client.get_workflow_handle(workflow_id).describe()
                    except RPCError:
                        continue  # the follow-up does not exist yet
                    for pending in description.raw_description.pending_activities:
                        if (
                            pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                            and pending.last_worker_identity in self.dead
                        ):
                            handle = client.get_async_activity_handle(
                                workflow_id=workflow_id, run_id=None, activity_id=pending.activity_id
                            )
                            with contextlib.suppress(RPCError):  # it completed or timed out meanwhile
                                await handle.fail(ApplicationError("its worker was SIGKILLed", type="WorkerKilled"))
                                lost = f"{workflow_id}/{pending.activity_type.name}/{pending.activity_id}"
                                self.lost.append(lost)
                                self.note(f"ended the lost attempt {pending.attempt} of {lost}")
                                ended = True
                if ended and not self.clock_lock.locked() and (backoff is None or backoff.done()):
                    backoff = asyncio.create_task(self.skip(timedelta(seconds=15)), name="skip-backoff")
                await asyncio.sleep(0.05)
        finally:
            if backoff is not None:
                backoff.cancel()
                with contextlib.suppress(asyncio.CancelledError, AssertionError):
                    await backoff

    async def skip(self, duration: timedelta) -> None:
        """Move the server's clock on (it waits for every started activity attempt to end)."""
        async with self.clock_lock:
            self.note(f"skipping {duration}")
            try:
                await asyncio.wait_for(self.env.sleep(duration), timeout=WAIT)
                self.note(f"skipped {duration}")
            except TimeoutError:
                raise AssertionError(f"skipping {duration} took over {WAIT:g} s: {await self.pending()}") from None

    async def pending(self) -> list[str]:
        found = []
        for workflow_id in self.workflow_ids:
            with contextlib.suppress(RPCError):
                description = await self.env.client.get_workflow_handle(workflow_id).describe()
                found += [
                    f"{workflow_id}: {p.activity_type.name} #{p.activity_id} {PendingActivityState.Name(p.state)} "
                    f"attempt {p.attempt} by {p.last_worker_identity}"
                    for p in description.raw_description.pending_activities
                ]
        return found

    # The life itself ---------------------------------------------------------------------------------

    async def live(self) -> Outcome:
        (self.folder / "teams.toml").write_text(TEAMS)
        store = await Store.open(f"sqlite+aiosqlite:///{self.folder / 'store.db'}")
        watcher: asyncio.Task[None] | None = None
        try:
            await self.start_workers()
            if self.activity is not None or self.hold is not None:
                watcher = asyncio.create_task(self.watch(), name="crash-watch")
            async with self.api(store) as http:
                await self.story(store, http, watcher)
            statuses = {workflow_id: await self.status(workflow_id) for workflow_id in self.workflow_ids}
            return Outcome(self.pm_id, await self.reached(), list(self.killed), list(self.lost), statuses)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            self.world.hold.released.set()  # a held answer never outlives its life
            await self.terminate()
            await self.stop_workers()
            await store.close()

    @contextlib.asynccontextmanager
    async def api(self, store: Store) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(
            store=StoreSettings(data_dir=self.folder), temporal=TemporalSettings(task_queue=self.task_queue)
        )
        gateway = TemporalGateway("unused", "default", self.task_queue, client=self.env.client)
        app = create_app(Services(settings=settings, store=store, temporal=gateway, teams=parse_teams(TEAMS)))
        now = datetime.now(UTC)
        for name, role in ((EDITOR, Role.EDITOR), (ALICE, Role.REVIEWER), (BOB, Role.REVIEWER), (ADMIN, Role.ADMIN)):
            self.tokens[name] = (await store.tokens.create(name, role, now))[1]
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=WAIT) as http:
            yield http

    def auth(self, who: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **headers}

    async def until(self, what: str, check: Callable[[], Awaitable[Any]], watcher: asyncio.Task[None] | None) -> Any:
        self.note(f"waiting: {what}")

        async def guarded() -> Any:
            self.alive()
            if watcher is not None and watcher.done() and not watcher.cancelled() and watcher.exception():
                raise watcher.exception()  # type: ignore[misc]
            return await check()

        try:
            found = await eventually(guarded, timeout=WAIT, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{what}: not within {WAIT:g} s\n{self.story_so_far()}") from exc
        self.note(f"done: {what}")
        return found

    def story_so_far(self) -> str:
        title = f"crashes in {self.activity}:" if self.activity else f"killed with the {self.hold} held:"
        return "\n".join([title if self.activity or self.hold else "no crash:", *self.journal])

    async def story(self, store: Store, http: httpx.AsyncClient, watcher: asyncio.Task[None] | None) -> None:
        pm = f"/api/postmortems/{self.pm_id}"
        now = await self.env.get_current_time()
        await self.env.client.start_workflow(
            PostmortemWorkflow.run,
            PostmortemWorkflowInput(postmortem_id=self.pm_id, event=pagerduty_event(self.incident, resolved_at=now)),
            id=workflow_id_for(self.pm_id),
            task_queue=self.task_queue,
        )

        async def invited(sequence: int) -> bool:
            return self.invites_by_email().get(sequence, 0) >= 1 and self.calendar_puts().get(sequence, 0) >= 1

        async def drafted() -> bool:
            answer = await http.get(pm, headers=self.auth(EDITOR))
            return answer.status_code == 200 and answer.json().get("meeting") is not None and await invited(0)

        await self.until("drafted, meeting planned and invited", drafted, watcher)

        # Edits: the title, every required section left empty, two action items.
        answer = await http.get(pm, headers=self.auth(EDITOR))
        report = answer.json()
        sections = {s["key"]: {"body": f"Written by hand: {s['title']}."} for s in report["sections"] if s["required"]}
        edit = await http.patch(
            pm,
            json={"title": NEW_TITLE, "sections": sections},
            headers=self.auth(EDITOR, **{"If-Match": answer.headers["ETag"]}),
        )
        assert edit.status_code == 200, edit.text
        due = (now + timedelta(days=7)).date()
        for description, due_date in zip(ITEMS, (due, None), strict=True):
            created = await http.post(
                f"{pm}/action-items",
                json={"description": description, "owner": ALICE, "due_date": due_date and due_date.isoformat()},
                headers=self.auth(EDITOR),
            )
            assert created.status_code == 201, created.text

        # The meeting moves: revision 1 goes out on both channels.
        start = (now + timedelta(days=6)).replace(hour=10, minute=0, second=0, microsecond=0)
        moved = await http.post(  # any day of the week: forced past the team's working hours
            f"{pm}/meeting", json={"start": start.isoformat(), "force": True}, headers=self.auth(EDITOR)
        )
        assert moved.status_code == 200, moved.text
        self.note("rescheduled")
        await self.until("the rescheduled meeting invited", lambda: invited(1), watcher)

        submitted = await http.post(
            f"{pm}/submit", json={"reviewers": [ALICE, BOB]}, headers=self.auth(EDITOR, **{"Idempotency-Key": "s1"})
        )
        assert submitted.status_code == 200, submitted.text
        self.note("submitted")
        for reviewer in (ALICE, BOB):
            approved = await http.post(
                f"{pm}/approve", json={}, headers=self.auth(reviewer, **{"Idempotency-Key": f"a-{reviewer}"})
            )
            assert approved.status_code == 200, approved.text
            self.note(f"approved by {reviewer}")

        async def published() -> bool:
            items = (await store.postmortems.get(self.pm_id)).action_items
            exported = await http.get(f"{pm}/export", params={"format": "md"}, headers=self.auth(EDITOR))
            return exported.status_code == 200 and len(items) == 2 and all(i.ticket_key for i in items)

        await self.until("published with a ticket per action item", published, watcher)

        async def followed_up() -> bool:
            return [check["day"] for check in await store.follow_ups.list(self.pm_id)] == [30, 60, 90]

        await self.skip(timedelta(days=91))
        await self.until("the 30/60/90-day checks recorded", followed_up, watcher)
        archived = await http.post(f"{pm}/archive", headers=self.auth(ADMIN))
        assert archived.status_code == 200, archived.text

        async def ended() -> bool:
            return await self.status(workflow_id_for(self.pm_id)) != WorkflowExecutionStatus.RUNNING

        await self.until("the report's workflow ended after the archive", ended, watcher)

    async def terminate(self) -> None:
        """Nothing of this life may go on in the module's server (its timers would fire in later lives)."""
        for workflow_id in self.workflow_ids:
            with contextlib.suppress(RPCError):
                await self.env.client.get_workflow_handle(workflow_id).terminate("the test is over")

    async def status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        with contextlib.suppress(RPCError):
            return (await self.env.client.get_workflow_handle(workflow_id).describe()).status
        return None

    async def reached(self) -> set[str]:
        names: set[str] = set()
        for workflow_id in self.workflow_ids:
            with contextlib.suppress(RPCError):
                async for event in self.env.client.get_workflow_handle(workflow_id).fetch_history_events():
                    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                        names.add(event.activity_task_scheduled_event_attributes.activity_type.name)
        return names

    # What the outside world saw ----------------------------------------------------------------------

    def invites_by_email(self) -> Counter[int]:
        """Distinct invites of this report's meeting received by SMTP, counted by revision (SEQUENCE).

        A message received again with the same Message-ID and the same bytes is one message to its
        readers (mail systems drop a repeated Message-ID; a repeated iTIP REQUEST of the same UID,
        SEQUENCE and DTSTAMP changes nothing in a calendar) — SMTP cannot be asked whether an
        interrupted send arrived, so that repeat is what a crash in that window may cost. A second
        message for the same revision that differs in any byte of its invite is a second invite.
        Each person gets a copy of their own (their signed link): a revision counts the most copies
        any one person got of it."""
        uid = f"{self.pm_id}@postmortem"
        seen: dict[str, str] = {}
        readers: dict[str, tuple[str, ...]] = {}
        for message, recipients in self.world.smtp.invites():
            ics = next(p for p in message.walk() if p.get_content_type() == "text/calendar").get_content()
            if f"UID:{uid}" not in _unfold(ics):
                continue
            message_id = str(message["Message-ID"])
            assert seen.setdefault(message_id, ics) == ics, f"{message_id} sent twice with different invites"
            readers[message_id] = tuple(recipients)
        copies = Counter((_sequence(ics), readers[message_id]) for message_id, ics in seen.items())
        most: dict[int, int] = {}
        for (sequence, _), count in copies.items():
            most[sequence] = max(most.get(sequence, 0), count)
        return Counter(most)

    def calendar_puts(self) -> Counter[int]:
        """PUTs of this report's event at the calendar, counted by revision (SEQUENCE)."""
        uid = f"{self.pm_id}@postmortem"
        return Counter(
            _sequence(body.decode())
            for method, path, body in self.world.calendar.requests
            if method == "PUT" and f"UID:{uid}" in _unfold(body.decode())
        )


def _unfold(ics: str) -> str:
    return re.sub(r"\r?\n[ \t]", "", ics)


def _sequence(ics: str) -> int:
    found = re.search(r"^SEQUENCE:(\d+)", _unfold(ics), re.MULTILINE)
    return int(found[1]) if found else 0


async def live(
    env: WorkflowEnvironment,
    world: World,
    folder: Path,
    activity: str | None = None,
    zygote: Zygote | None = None,
    hold: str | None = None,
) -> tuple[Life, Outcome]:
    world.reset(hold)
    life = Life(env=env, world=world, folder=folder, activity=activity, zygote=zygote, hold=hold)
    return life, await life.live()


async def check_the_life(life: Life, outcome: Outcome) -> None:
    try:
        await _check_the_life(life, outcome)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{life.story_so_far()}") from None


async def _check_the_life(life: Life, outcome: Outcome) -> None:
    """Everything happened, and exactly once."""
    store = await Store.open(f"sqlite+aiosqlite:///{life.folder / 'store.db'}")
    try:
        pm = await store.postmortems.get(outcome.postmortem_id)
        meeting = await store.meetings.get(outcome.postmortem_id)
        review = await store.review.get(outcome.postmortem_id)
        exported = await store.review.get_export(outcome.postmortem_id, "md")
        follow_ups = await store.follow_ups.list(outcome.postmortem_id)
        problems = await store.problems.list(outcome.postmortem_id)
    finally:
        await store.close()
    revisions = {sequence: 1 for sequence in range((meeting.sequence if meeting else -1) + 1)}
    assert meeting is not None and meeting.sequence == 1
    assert dict(life.invites_by_email()) == revisions, "one email invite per meeting revision"
    assert dict(life.calendar_puts()) == revisions, "one calendar PUT per meeting revision"

    github = life.world.github
    assert len(github.issues) == len(ITEMS) == github.created, f"one ticket per action item: {github.payloads}"
    keys = sorted(item.ticket_key or "" for item in pm.action_items)
    assert keys == sorted(f"{github.repo}#{number}" for number in github.issues)
    assert sorted(item.description for item in pm.action_items) == sorted(ITEMS), "every action item kept"

    assert pm.title == NEW_TITLE and all(s.body.strip() for s in pm.sections if s.required), "every edit kept"
    assert exported is not None and NEW_TITLE in exported[1].decode(), "the edited text is what was published"
    decisions = {state.reviewer: state.decision for state in review.reviewers}
    assert decisions == {ALICE: Decision.APPROVED, BOB: Decision.APPROVED}, "every approval kept"
    actions = Counter(t.action for t in review.history)
    assert actions["submit"] == 1 and actions["approve"] == 2 and actions["archive"] == 1, review.history
    assert review.published_count == 1

    assert [check["day"] for check in follow_ups] == [30, 60, 90] and follow_ups[-1]["verdict"] is not None
    assert set(outcome.statuses.values()) == {WorkflowExecutionStatus.COMPLETED}, outcome.statuses
    assert problems == [], f"a crash is not a failure of the outside world: {problems}"
    notifications = {  # by Message-ID: a resend after an interrupted SMTP send is the same message
        str(m["Message-ID"]): (str(m["Subject"]), str(m["To"]))
        for m in life.world.smtp.messages
        if "text/calendar" not in _types(m)
    }
    emails = Counter(notifications.values())
    assert emails and all(n == 1 for n in emails.values()), f"each notification email once: {emails}"
    posts = Counter(message.get("text") for message in life.world.slack.posted)
    assert posts and all(n == 1 for n in posts.values()), f"each Slack message once: {posts}"


def _types(message: Any) -> set[str]:
    return {part.get_content_type() for part in message.walk()}


# The tests ------------------------------------------------------------------------------------------


@dataclass
class Baseline:
    life: Life
    outcome: Outcome


@pytest_asyncio.fixture(scope="module")
async def baseline(clock: WorkflowEnvironment, world: World, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """The life once without a crash: what it reaches, and proof that the life itself is sound."""
    life, outcome = await live(clock, world, tmp_path_factory.mktemp("baseline"), None)
    await check_the_life(life, outcome)
    print(life.story_so_far())  # with -rP: where the time went
    return Baseline(life, outcome)


def test_every_registered_activity_is_a_case(registry: list[str]) -> None:
    missing = sorted(set(registry) - set(ACTIVITIES))
    assert not missing, f"registered by build_worker but not found in postmortem.app.worker's classes: {missing}"


async def test_the_life_without_a_crash(baseline: Baseline) -> None:
    assert {"draft_postmortem", "send_invite", "publish_report", "open_tickets"} <= baseline.outcome.reached


@pytest.mark.parametrize("activity", ACTIVITIES)
async def test_a_worker_killed_inside_each_activity(
    activity: str,
    registry: list[str],
    baseline: Baseline,
    clock: WorkflowEnvironment,
    world: World,
    zygote: Zygote,
    tmp_path: Path,
) -> None:
    if activity not in registry:
        pytest.skip(f"{activity} is defined but build_worker does not register it")
    if activity not in baseline.outcome.reached:
        reached = ", ".join(sorted(baseline.outcome.reached))
        pytest.skip(f"{activity} is never reached in this life (it reaches: {reached})")
    life, outcome = await live(clock, world, tmp_path, activity, zygote)
    assert [(k["activity_type"], k["moment"]) for k in outcome.killed] == [(activity, m) for m in MOMENTS]
    assert len(outcome.lost_attempts) >= len(MOMENTS), "each dead worker left its started attempt behind"
    await check_the_life(life, outcome)
    print(life.story_so_far())  # with -rP: where the time went


# Each delivery notes its attempt before sending (store.meetings.begin_delivery). A retry after an attempt
# that never heard back asks the upstream where it can be asked: the calendar (GET, its SEQUENCE) and the
# Slack channel (the key in the post's metadata). SMTP cannot be asked: the retry sends the very same
# message again (same Message-ID and bytes), which `invites_by_email` and the notification count accept as
# one message and nothing else.
@pytest.mark.parametrize("kind", Hold.KINDS)
async def test_a_worker_killed_between_the_upstreams_yes_and_our_record_of_it(
    kind: str, baseline: Baseline, clock: WorkflowEnvironment, world: World, zygote: Zygote, tmp_path: Path
) -> None:
    """The kill lands inside the side effect: the upstream did it (the message is accepted, the event
    stored, the post made) but its answer never reached the worker, so nothing recorded the delivery."""
    life, outcome = await live(clock, world, tmp_path, zygote=zygote, hold=kind)
    assert [k["moment"] for k in outcome.killed] == ["held"], "the held answer never came"
    await check_the_life(life, outcome)
    print(life.story_so_far())
