"""Drafting benchmark: resolved webhooks in, reports drafted (with their review meeting planned) out.

Run from the repository root with the project's venv:

    python bench/draft.py [--reports 100] [--probe-rate 5] [--in-flight 0]

It starts `postmortem dev` as a user runs it (Temporal dev server, API + relay, the worker in its own
process; a temporary data folder, free ports) and measures, against a floor on the same server:

1. the floor: the same workflow (`PostmortemWorkflow`, the worker's own code) on its own task queue,
   served by a worker whose activities do nothing (`noop-worker`, a subprocess of this script),
   started exactly as the relay starts ours (`TemporalGateway.start_postmortem`), N at a time;
2. ours: N signed PagerDuty resolves posted to `/webhooks/pagerduty`, until N reports are in the
   store with their meeting planned (read from the store's SQLite file, read-only, every 100 ms);
3. ack latency: signed resolves at `--probe-rate` per second (open loop, timed from each one's
   scheduled send) with nothing else to do, then again while a burst of `--latency-burst` reports
   is being drafted;
4. the worker's resident memory with everything drafted so far in flight (waiting for review), and
   with `--in-flight` reports in flight when asked (the target is for 10,000).

CPU seconds come from /proc (utime + stime of each process and its descendants): "ours" is the
`postmortem dev` process (API, relay) and its worker process, "Temporal" is the dev server, "floor
worker" the no-op worker. Each phase is counted from its first request until the processes are
quiet again (so the work a report leaves behind counts), minus what the processes burn when idle
(measured before). This is a benchmark, not a test: it prints PASS/MISS words and exits 0 unless
something crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the real payloads live with the tests

from temporalio import activity
from temporalio.common import RawValue
from temporalio.worker import Worker

from postmortem.activities.draft import DraftPostmortemInput, DraftPostmortemResult
from postmortem.activities.gather import GatherActivities, GatherResult
from postmortem.activities.meeting import DeliveryResult, MeetingActivities, PlanMeetingInput, SendInviteInput
from postmortem.activities.team import ResolveTeamInput
from postmortem.app.gateway import TemporalGateway
from postmortem.app.runtime import load_teams
from postmortem.app.settings import Settings
from postmortem.app.temporal import connect
from postmortem.app.worker import WORKFLOWS
from postmortem.evidence.models import EvidenceSource, GatherState
from postmortem.incident.teams import TeamSettings
from postmortem.meeting.agenda import build_agenda
from postmortem.meeting.models import Attendee, Meeting
from postmortem.models import IncidentEvent, PolicyOutcome, Status
from postmortem.store.inbox import incident_delivery, stored_event
from postmortem.webhooks.pagerduty import parse_pagerduty
from postmortem.webhooks.pagerduty_signature import HEADER as SIGNATURE_HEADER
from postmortem.webhooks.pagerduty_signature import sign
from postmortem.workflows.identity import postmortem_id_for
from tests.factories import pagerduty_resolved_body

SECRET = "bench-draft-secret"
ADMIN = "bench-draft-admin"
FLOOR_QUEUE = "bench-floor"
CONCURRENCY = 16
START_TIMEOUT = 90.0
TICK = os.sysconf("SC_CLK_TCK")
TARGET_OURS_MS = 80.0
TARGET_TEMPORAL_MS = 150.0
TARGET_FLOOR_RATIO = 0.7
TARGET_P99_MS = 50.0
TARGET_RSS_MB = 1024.0


def status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


# --- /proc ----------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def descendants(root: int) -> set[int]:
    """`root` and every process below it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found


def cpu_seconds(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in values:
                values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


@dataclass
class Groups:
    """The processes whose CPU is counted, by group."""

    ours: Callable[[], set[int]]
    temporal: Callable[[], set[int]]
    floor: Callable[[], set[int]]
    worker: Callable[[], set[int]]  # part of ours: the worker process (the rest is the API and relay)

    def sample(self) -> dict[str, float]:
        return {name: cpu_seconds(getattr(self, name)()) for name in ("ours", "temporal", "floor", "worker")}


# --- the service under test -------------------------------------------------------------------


class Service:
    """`postmortem dev` in its own session (so the whole tree can be stopped as Ctrl-C would)."""

    def __init__(self, workdir: Path) -> None:
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True)
        self.port, self.temporal_port, ui_port = free_ports(3)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.temporal_address = f"127.0.0.1:{self.temporal_port}"
        self.log = workdir / "service.log"
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("POSTMORTEM_")}
        self.env.update(
            POSTMORTEM_DATA_DIR=str(self.data_dir),
            POSTMORTEM_PORT=str(self.port),
            POSTMORTEM_TEMPORAL_PORT=str(self.temporal_port),
            POSTMORTEM_TEMPORAL_UI_PORT=str(ui_port),
            POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS=SECRET,
            POSTMORTEM_BOOTSTRAP_ADMIN_TOKEN=ADMIN,
            POSTMORTEM_LOG_LEVEL="WARNING",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = Path(sys.executable).parent / "postmortem"
        if not command.exists():
            raise SystemExit("error: the `postmortem` console script is not installed (pip install -e .)")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(command), "dev"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"`postmortem dev` exited at start-up:\n{self.tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"`postmortem dev` was not ready within {START_TIMEOUT:.0f} s:\n{self.tail()}")
                await asyncio.sleep(0.2)
        for name in ("worker.pid", "temporal.pid"):
            while not (self.data_dir / name).exists():
                await asyncio.sleep(0.1)

    def pid(self, name: str) -> int:
        return int((self.data_dir / f"{name}.pid").read_text().strip())

    def ours(self) -> set[int]:
        assert self.process is not None
        return descendants(self.process.pid) - self.temporal()

    def temporal(self) -> set[int]:
        return descendants(self.pid("temporal"))

    def worker(self) -> set[int]:
        return descendants(self.pid("worker"))

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole tree
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Drafted:
    """How many reports of a prefix are in the store with their meeting planned (read-only SQLite)."""

    def __init__(self, database: Path) -> None:
        self._database = database

    def count(self, prefix: str) -> int:
        with contextlib.closing(sqlite3.connect(f"file:{self._database}?mode=ro", uri=True, timeout=5)) as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM meetings WHERE postmortem_id LIKE ?", (f"pagerduty-{prefix}-%",)
            ).fetchone()
        return int(count)

    async def wait(self, prefix: str, expected: int, timeout: float) -> tuple[float, int]:
        """Seconds until `expected` are drafted (the time of the poll that saw it), and how many were."""
        deadline = time.monotonic() + timeout
        while True:
            done = await asyncio.to_thread(self.count, prefix)
            if done >= expected or time.monotonic() > deadline:
                return time.monotonic(), done
            await asyncio.sleep(0.1)


# --- load -----------------------------------------------------------------------------------


def signed_webhook(incident_id: str) -> tuple[bytes, dict[str, str]]:
    body = pagerduty_resolved_body(incident_id)
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, SECRET)}


class Pool:
    """httpx clients of one keep-alive connection each, lent one request at a time (cheap per request);
    a new one when all are busy (an open loop never waits for a connection)."""

    def __init__(self, base_url: str, size: int) -> None:
        self._base_url = base_url
        self._clients: list[httpx.AsyncClient] = []
        self._idle: asyncio.LifoQueue[httpx.AsyncClient] = asyncio.LifoQueue()
        for _ in range(size):
            self._idle.put_nowait(self._new())

    def _new(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self._base_url, timeout=30, limits=httpx.Limits(max_connections=1))
        self._clients.append(client)
        return client

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        client = self._idle.get_nowait() if not self._idle.empty() else self._new()
        try:
            return (await client.post("/webhooks/pagerduty", content=body, headers=headers)).status_code
        finally:
            self._idle.put_nowait(client)

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._clients), return_exceptions=True)


async def burst(calls: Sequence[Callable[[], Awaitable[None]]], concurrency: int = CONCURRENCY) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with semaphore:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


@dataclass
class Latency:
    rate: float
    ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def p(self, q: float) -> float:
        if not self.ms:
            return math.nan
        ordered = sorted(self.ms)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def probes(pool: Pool, prefix: str, rate: float, until: Callable[[], bool], minimum: float) -> Latency:
    """Signed resolves at `rate`/s (open loop) until `until()` and at least `minimum` seconds."""
    result = Latency(rate)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks: list[asyncio.Task[None]] = []

    async def one(scheduled: float, request: tuple[bytes, dict[str, str]]) -> None:
        try:
            code = await pool.post(*request)
        except Exception as exc:  # counted, never fatal
            result.errors[type(exc).__name__] += 1
            return
        if code != 202:
            result.errors[f"HTTP {code}"] += 1
            return
        result.ms.append((loop.time() - scheduled) * 1000)

    index = 0
    while loop.time() - start < minimum or not until():
        scheduled = start + index / rate
        request = signed_webhook(f"{prefix}-{index:06d}")  # built before its slot
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        tasks.append(asyncio.create_task(one(scheduled, request)))
        index += 1
    await asyncio.gather(*tasks)
    return result


async def post_all(pool: Pool, prefix: str, count: int, errors: Counter[str]) -> None:
    requests = [signed_webhook(f"{prefix}-{n:06d}") for n in range(count)]

    def call(request: tuple[bytes, dict[str, str]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                code = await pool.post(*request)
            except Exception as exc:
                errors[type(exc).__name__] += 1
                return
            if code != 202:
                errors[f"HTTP {code}"] += 1

        return run

    await burst([call(request) for request in requests])


# --- the floor: the same workflow, activities that do nothing ----------------------------------


def noop_worker_main(address: str, task_queue: str) -> None:
    """`python bench/draft.py noop-worker`: the real workflows, no-op activities; prints `planned <id>`."""
    settings = Settings()
    teams = load_teams(settings)  # the service's own team settings: the workflow takes the same turns
    # ...and the same view of what the worker can reach (sources, invite channels) as the service's worker.
    s = settings
    gatherers = GatherActivities(
        None,  # type: ignore[arg-type]  # never gathers: only asked what it could reach
        pagerduty=s.pagerduty,
        opsgenie=s.opsgenie,
        jsm=s.jsm,
        slack=s.slack,
        alertmanager=s.alertmanager,
        http=s.http,
    )
    meetings = MeetingActivities(None, smtp=s.smtp, caldav=s.caldav, http=s.http)  # type: ignore[arg-type]
    unreachable, channels = gatherers.unreachable(), meetings.invite_channels()

    @activity.defn(name="resolve_team")
    async def resolve_team(input: ResolveTeamInput) -> TeamSettings:
        team = teams.resolve(input.incident)
        team.unreachable_sources, team.invite_channels = dict(unreachable), list(channels)
        return team

    def gatherer(name: str, source: EvidenceSource) -> Callable[[dict[str, Any]], Awaitable[GatherResult]]:
        @activity.defn(name=name)
        async def gather(input: dict[str, Any]) -> GatherResult:
            return GatherResult(source=source, state=GatherState.NOT_CONFIGURED)

        return gather

    @activity.defn(name="draft_postmortem")
    async def draft_postmortem(input: DraftPostmortemInput) -> DraftPostmortemResult:
        skipped = input.decision.outcome == PolicyOutcome.SKIP
        return DraftPostmortemResult(
            postmortem_id=input.postmortem_id, status=Status.SKIPPED if skipped else Status.DRAFT, created=True
        )

    @activity.defn(name="plan_meeting")
    async def plan_meeting(input: PlanMeetingInput) -> Meeting:
        start = input.now + timedelta(days=1)
        print(f"planned {input.postmortem_id}", flush=True)
        return Meeting(
            postmortem_id=input.postmortem_id,
            uid=f"{input.postmortem_id}@postmortem",
            sequence=0,
            title=input.title,
            start=start,
            end=start + timedelta(minutes=30),
            timezone=input.team.timezone,
            organizer=Attendee(email="postmortem@localhost"),
            attendees=[],
            agenda=build_agenda(30, input.language),
            report_url="http://127.0.0.1/",
            language=input.language,
        )

    @activity.defn(name="send_invite")
    async def send_invite(input: SendInviteInput) -> DeliveryResult:
        return DeliveryResult(channel=input.channel, key="", sent=False, detail="not configured")

    @activity.defn(dynamic=True)
    async def anything_else(args: Sequence[RawValue]) -> None:
        status(f"floor: no no-op for activity {activity.info().activity_type!r}; it returned None")

    async def main() -> None:
        client = await connect(address)
        sources = [
            ("gather_pagerduty", EvidenceSource.PAGERDUTY),
            ("gather_opsgenie", EvidenceSource.OPSGENIE),
            ("gather_alertmanager", EvidenceSource.ALERTMANAGER),
            ("gather_slack", EvidenceSource.SLACK),
        ]
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            activities=[
                resolve_team,
                *(gatherer(name, source) for name, source in sources),
                draft_postmortem,
                plan_meeting,
                send_invite,
                anything_else,
            ],
        )
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with worker:
            print("ready", flush=True)
            await stop.wait()

    asyncio.run(main())


class NoopWorker:
    def __init__(self, address: str, env: dict[str, str], log: Path) -> None:
        self._address = address
        self._env = env
        self._log = log
        self.process: asyncio.subprocess.Process | None = None
        self.planned: Counter[str] = Counter()  # per prefix
        self.ready = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "noop-worker",
                "--address",
                self._address,
                "--task-queue",
                FLOOR_QUEUE,
                env=self._env,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )
        self._reader = asyncio.create_task(self._read())
        exited = asyncio.create_task(self.process.wait())
        ready = asyncio.create_task(self.ready.wait())
        await asyncio.wait([exited, ready], timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if not self.ready.is_set():
            ready.cancel()
            tail = "\n".join(self._log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"the floor's no-op worker did not start; its stderr:\n{tail}")
        exited.cancel()

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            text = line.decode().strip()
            if text == "ready":
                self.ready.set()
            elif text.startswith("planned pagerduty-"):
                self.planned[text.split("-")[1]] += 1

    async def wait(self, prefix: str, expected: int, timeout: float) -> tuple[float, int]:
        deadline = time.monotonic() + timeout
        while self.planned[prefix] < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return time.monotonic(), self.planned[prefix]

    def pids(self) -> set[int]:
        return descendants(self.process.pid) if self.process is not None else set()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
        if self._reader is not None:
            self._reader.cancel()


def floor_event(incident_id: str) -> IncidentEvent:
    """The event the relay hands to Temporal for this incident (as the inbox stores it)."""
    (event,) = parse_pagerduty(json.loads(pagerduty_resolved_body(incident_id)))
    assert isinstance(event, IncidentEvent)
    return stored_event(incident_delivery(event))


async def start_floor(address: str, prefix: str, count: int) -> None:
    """Exactly the relay's call (TemporalGateway.start_postmortem), on the floor's task queue."""
    gateway = TemporalGateway(address, "default", FLOOR_QUEUE)
    events = [floor_event(f"{prefix}-{n:06d}") for n in range(count)]

    def call(number: int, event: IncidentEvent) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            pm_id = postmortem_id_for(event.incident.source.value, event.incident.id)
            await gateway.start_postmortem(pm_id, event, str(number))

        return run

    await burst([call(n, event) for n, event in enumerate(events, start=1)])


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Phase:
    reports: int
    done: int
    seconds: float  # first request to the last report drafted
    cpu: dict[str, float]  # CPU seconds per group, idle subtracted, first request to quiet

    @property
    def per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def per_report_ms(self, group: str) -> float:
        return 1000 * self.cpu[group] / self.done if self.done else math.nan


async def quiet(groups: Groups, idle: dict[str, float], limit: float = 20.0) -> float:
    """Wait until the processes burn about their idle rate again (two 0.5 s windows); returns the time."""
    calm = 0
    deadline = time.monotonic() + limit
    before = groups.sample()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        after = groups.sample()
        busy = sum(after[g] - before[g] - idle[g] * 0.5 for g in after if g != "worker")  # worker: inside ours
        before = after
        calm = calm + 1 if busy < 0.03 else 0
        if calm >= 2:
            break
    return time.monotonic()


async def measure_idle(groups: Groups, seconds: float = 3.0) -> dict[str, float]:
    before = groups.sample()
    await asyncio.sleep(seconds)
    after = groups.sample()
    return {group: (after[group] - before[group]) / seconds for group in after}


async def phase(
    groups: Groups,
    idle: dict[str, float],
    send: Callable[[], Coroutine[Any, Any, None]],
    wait: Callable[[], Awaitable[tuple[float, int]]],
    reports: int,
) -> Phase:
    before = groups.sample()
    started = time.monotonic()
    sender = asyncio.create_task(send())
    finished, done = await wait()
    await sender
    end = await quiet(groups, idle)
    after = groups.sample()
    cpu = {g: max(0.0, after[g] - before[g] - idle[g] * (end - started)) for g in after}
    return Phase(reports=reports, done=done, seconds=finished - started, cpu=cpu)


@dataclass
class Results:
    floor: Phase
    ours: Phase
    idle_probes: Latency
    busy_probes: Latency
    latency_burst: Phase
    rss: list[tuple[str, int, float, float]]  # (moment, reports in flight, RSS, peak)
    errors: Counter[str]
    idle: dict[str, float]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(args: argparse.Namespace, r: Results) -> None:
    ratio = r.ours.per_second / r.floor.per_second if r.floor.per_second else 0.0
    lines = [
        "",
        f"Drafting benchmark: {args.reports} resolved webhooks per phase, {os.cpu_count()} CPUs, "
        f"postmortem dev (API + worker process + Temporal dev server)",
        f"  idle CPU (cores): ours {r.idle['ours']:.3f}, Temporal {r.idle['temporal']:.3f}, "
        f"floor worker {r.idle['floor']:.3f} (subtracted below)",
        "",
        f"{'path':<46} {'drafted':>8} {'seconds':>8} {'per second':>11} {'ours ms/report':>15} "
        f"{'Temporal ms/report':>19} {'of ours, worker':>16}",
    ]
    for name, result, own in (
        ("floor: same workflow, no-op activities", r.floor, "floor"),
        ("ours: webhook -> relay -> Temporal -> worker", r.ours, "ours"),
        ("ours: a burst and the probes at the same time", r.latency_burst, "ours"),
    ):
        lines.append(
            f"{name:<46} {result.done:>4}/{result.reports:<3} {result.seconds:>8.2f} {result.per_second:>11.2f} "
            f"{result.per_report_ms(own):>15.1f} {result.per_report_ms('temporal'):>19.1f}"
            + (f" {result.per_report_ms('worker'):>16.1f}" if own == "ours" else "")
        )
    lines += [
        "  (the floor's 'ours' column is the no-op worker's CPU; 'of ours, worker': the worker process, the rest of"
        " ours is the API process with the relay)",
        "",
        f"Ack latency of signed resolves at {args.probe_rate:g}/s, open loop, from each one's scheduled send:",
        f"  {'worker paused (ack, inbox, relay only)':<44} p50 {r.idle_probes.p(50):7.1f} ms   p99 {r.idle_probes.p(99):7.1f} ms   "
        f"({len(r.idle_probes.ms)} ok, {sum(r.idle_probes.errors.values())} errors)",
        f"  {f'while a burst of {r.latency_burst.reports - len(r.busy_probes.ms)} is drafted':<44} p50 {r.busy_probes.p(50):7.1f} ms   "
        f"p99 {r.busy_probes.p(99):7.1f} ms   ({len(r.busy_probes.ms)} ok, {sum(r.busy_probes.errors.values())} errors)",
        "",
        "Worker process memory (reports in flight: drafted, waiting for review):",
        *(
            f"  {moment:<44} {flight:>6} in flight   RSS {rss:7.1f} MiB   peak {peak:7.1f} MiB"
            for moment, flight, rss, peak in r.rss
        ),
        "",
        "Targets:",
    ]
    ours_ms, temporal_ms = r.ours.per_report_ms("ours"), r.ours.per_report_ms("temporal")
    p99 = r.busy_probes.p(99)
    biggest = max(r.rss, key=lambda row: row[1])
    checks = [
        (f"our CPU per report <= {TARGET_OURS_MS:.0f} ms", f"{ours_ms:7.1f} ms", ours_ms <= TARGET_OURS_MS),
        (
            f"Temporal CPU per report <= {TARGET_TEMPORAL_MS:.0f} ms",
            f"{temporal_ms:7.1f} ms",
            temporal_ms <= TARGET_TEMPORAL_MS,
        ),
        (f"drafts/s >= {TARGET_FLOOR_RATIO:.1f}x floor", f"{ratio:7.2f}x", ratio >= TARGET_FLOOR_RATIO),
        (
            f"p99 ack < {TARGET_P99_MS:.0f} ms while drafting",
            f"{p99:7.1f} ms",
            p99 < TARGET_P99_MS and not r.busy_probes.errors,
        ),
        (
            f"worker RSS < {TARGET_RSS_MB:.0f} MiB at {biggest[1]} in flight",
            f"{biggest[2]:7.1f} MiB",
            biggest[2] < TARGET_RSS_MB,
        ),
    ]
    lines += [f"  {name:<44} {figure:>10}   {verdict(ok)}" for name, figure, ok in checks]
    if biggest[1] < 10_000:
        lines.append(f"  (the memory target is for 10,000 in flight: --in-flight 10000; measured at {biggest[1]})")
    incomplete = [p for p in (r.floor, r.ours, r.latency_burst) if p.done < p.reports]
    if incomplete or r.errors:
        lines.append(f"  errors: {dict(r.errors)}; incomplete phases: {[(p.done, p.reports) for p in incomplete]}")
    print("\n".join(lines), flush=True)


async def run(args: argparse.Namespace) -> None:
    main_task = asyncio.current_task()
    if main_task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="postmortem-bench-draft-"))
    service = Service(workdir)
    floor = NoopWorker(service.temporal_address, service.env, workdir / "floor-worker.log")
    pool = Pool(service.base_url, CONCURRENCY)
    try:
        status(f"starting `postmortem dev` (data in {workdir}) ...")
        service.start()
        await service.wait_ready()
        status("starting the floor's no-op worker ...")
        await floor.start()
        groups = Groups(ours=service.ours, temporal=service.temporal, floor=floor.pids, worker=service.worker)
        drafted = Drafted(service.data_dir / "postmortem.db")
        errors: Counter[str] = Counter()
        timeout = max(120.0, args.reports * 3.0)
        in_flight = 0

        status("warm-up (untimed) ...")
        warm = min(10, args.reports)
        await post_all(pool, "WARM", warm, errors)
        await drafted.wait("WARM", warm, timeout)
        await start_floor(service.temporal_address, "FWARM", warm)
        await floor.wait("FWARM", warm, timeout)
        in_flight += warm
        idle = {g: 0.0 for g in ("ours", "temporal", "floor")}
        await quiet(groups, idle)
        idle = await measure_idle(groups)

        status(f"floor: {args.reports} workflows with no-op activities ...")
        floor_phase = await phase(
            groups,
            idle,
            lambda: start_floor(service.temporal_address, "FLOOR", args.reports),
            lambda: floor.wait("FLOOR", args.reports, timeout),
            args.reports,
        )
        status(f"ours: {args.reports} signed resolves drafted end to end ...")
        ours_phase = await phase(
            groups,
            idle,
            lambda: post_all(pool, "BURST", args.reports, errors),
            lambda: drafted.wait("BURST", args.reports, timeout),
            args.reports,
        )
        in_flight += ours_phase.done
        rss = [("after the burst", in_flight, *rss_mb(service.pid("worker")))]

        # The API's own path (ack, inbox, relay, Temporal) with no drafting at all: the worker paused.
        status(f"ack latency at {args.probe_rate:g}/s with the worker process paused ...")
        worker_pid = service.pid("worker")
        os.kill(worker_pid, signal.SIGSTOP)
        try:
            idle_probes = await probes(pool, "IDLE", args.probe_rate, lambda: True, minimum=args.probe_seconds)
        finally:
            os.kill(worker_pid, signal.SIGCONT)
        await drafted.wait("IDLE", len(idle_probes.ms), timeout)
        in_flight += len(idle_probes.ms)
        await quiet(groups, idle)

        # New resolves at the probe rate while a burst is drafted; they are reports too, counted with it.
        status(f"ack latency at {args.probe_rate:g}/s while {args.latency_burst} reports are drafted ...")
        # While the burst is drafted; but no longer than it took without probes (x1.5): where the
        # machine drafts fewer than --probe-rate a second, the probes alone would keep it busy for ever.
        burst_done = asyncio.Event()
        expected = args.latency_burst / ours_phase.per_second if ours_phase.per_second else 60.0
        cutoff = time.monotonic() + max(args.probe_seconds, 1.5 * expected)
        probe_task = asyncio.create_task(
            probes(
                pool,
                "PROBE",
                args.probe_rate,
                lambda: burst_done.is_set() or time.monotonic() > cutoff,
                minimum=args.probe_seconds,
            )
        )

        async def burst_and_probes_drafted() -> tuple[float, int]:
            _, done = await drafted.wait("LAT", args.latency_burst, timeout)
            burst_done.set()
            sent = await probe_task
            finished, probed = await drafted.wait("PROBE", len(sent.ms), timeout)
            return finished, done + probed

        latency_phase = await phase(
            groups,
            idle,
            lambda: post_all(pool, "LAT", args.latency_burst, errors),
            burst_and_probes_drafted,
            args.latency_burst,
        )
        busy_probes = await probe_task
        latency_phase.reports += len(busy_probes.ms)
        in_flight += latency_phase.done
        await quiet(groups, idle)
        rss.append(("after the latency phase", in_flight, *rss_mb(service.pid("worker"))))

        if args.in_flight > in_flight:
            more = args.in_flight - in_flight
            status(f"in flight: {more} more reports (untimed), up to {args.in_flight} ...")
            await post_all(pool, "FLIGHT", more, errors)
            _, done = await drafted.wait("FLIGHT", more, max(timeout, more * 3.0))
            in_flight += done
            await quiet(groups, idle)
            rss.append((f"with --in-flight {args.in_flight}", in_flight, *rss_mb(service.pid("worker"))))

        print_report(
            args,
            Results(
                floor=floor_phase,
                ours=ours_phase,
                idle_probes=idle_probes,
                busy_probes=busy_probes,
                latency_burst=latency_phase,
                rss=rss,
                errors=errors,
                idle=idle,
            ),
        )
    finally:
        await pool.aclose()
        await floor.stop()
        service.stop()
        if args.keep:
            status(f"kept {workdir} (service.log, floor-worker.log, data/)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "noop-worker":
        parser = argparse.ArgumentParser(prog="draft.py noop-worker")
        parser.add_argument("noop_worker")
        parser.add_argument("--address", required=True)
        parser.add_argument("--task-queue", required=True)
        options = parser.parse_args()
        noop_worker_main(options.address, options.task_queue)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=100, help="webhooks per phase (default 100)")
    parser.add_argument(
        "--latency-burst", type=int, default=None, help="reports drafted under the probes (default --reports)"
    )
    parser.add_argument(
        "--probe-rate", type=float, default=5.0, help="signed resolves per second while timing acks (default 5)"
    )
    parser.add_argument("--probe-seconds", type=float, default=5.0, help="shortest probe phase (default 5 s)")
    parser.add_argument(
        "--in-flight", type=int, default=0, help="also print worker RSS with this many reports in flight"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, store) at the end")
    args = parser.parse_args()
    args.latency_burst = args.latency_burst or args.reports
    if args.reports < 1 or args.probe_rate <= 0:
        parser.error("--reports must be >= 1 and --probe-rate > 0")
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        status("interrupted; the service, the floor worker and the temporary folder were cleaned up")
        return 130
    except RuntimeError as exc:
        status(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
