"""Ingestion benchmark: a signed PagerDuty webhook in, an inbox entry acknowledged, a workflow started.

Run from the repository root with the project's venv:

    python bench/ingest.py [--requests 2000] [--concurrency 32] [--duration-seconds 10]

It starts its own Temporal dev server (temporary data folder, free ports) and the real API as a
subprocess (`postmortem api`, which also runs the inbox's relay), then measures:

1. the floor: bare `client.start_workflow` calls from this process, at the same concurrency and
   with exactly the workflow input the relay hands to Temporal;
2. acknowledgements with Temporal up: signed `POST /webhooks/pagerduty` to the API, every answer
   202 (the delivery committed to the inbox; the relay starts the workflow afterwards);
3. ack latency with Temporal up: an open-loop schedule at half the floor's rate;
4. the same two with Temporal stopped (the dev server shut down): the webhook must not care;
5. the relay's drain: Temporal started again on the same data file, the time until the backlog
   committed while it was away has become started workflows.

No worker runs: the workflows are started and stay pending, which is all ingestion needs.
This is a benchmark, not a test: it reports PASS/MISS against the targets and exits 0 unless
something crashed.

One file of over 300 lines on purpose: it is run as a script (`python bench/ingest.py`, no package
to import from) and read top to bottom as one experiment: the set-up (dev server, API subprocess,
signed requests), the measurements, the report. Nothing in it is used elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import math
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the real payloads live with the tests

from postmortem.app.devserver import DevServer
from postmortem.app.gateway import START_TIMEOUT
from postmortem.app.temporal import connect
from postmortem.models import IncidentEvent
from postmortem.store.inbox import incident_delivery, stored_event
from postmortem.webhooks.pagerduty import parse_pagerduty
from postmortem.webhooks.pagerduty_signature import HEADER as SIGNATURE_HEADER
from postmortem.webhooks.pagerduty_signature import sign
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.fixtures import fixture_json

FIXTURE = "pagerduty_v3_incident_resolved.json"
TASK_QUEUE = "postmortem"
SECRET = "bench-webhook-secret"
WEBHOOK_PATH = "/webhooks/pagerduty"
API_START_TIMEOUT = 60.0
API_STOP_TIMEOUT = 15.0
TARGET_ACK_RATIO = 2.0  # acknowledgements per second, against the floor's starts per second
TARGET_DRAIN_RATIO = 0.8  # the relay's entries -> started workflows per second, against the floor
TARGET_P99_MS = 50.0
DRAIN_TIMEOUT = 300.0
# The relay's longest wait between retries while Temporal is away (POSTMORTEM_INBOX_RETRY_MAX_SECONDS):
# short here, so the drain starts soon after Temporal is back; the drain rate is measured from the
# first entry relayed either way, and the wait is reported beside it.
RELAY_RETRY_MAX_SECONDS = 2.0


# --- set-up helpers -------------------------------------------------------------------------


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct free ports: all sockets stay bound until every port is known."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind((host, 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def postmortem_command() -> str:
    beside_python = Path(sys.executable).parent / "postmortem"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("postmortem")
    if found is None:
        raise SystemExit("error: the `postmortem` console script is not installed (pip install -e .)")
    return found


def load_fixture() -> dict[str, Any]:
    fixture: dict[str, Any] = fixture_json(FIXTURE)
    return fixture


def delivery(fixture: dict[str, Any], incident_id: str) -> dict[str, Any]:
    """The fixture as PagerDuty would send it for another incident."""
    doc = copy.deepcopy(fixture)
    doc["event"]["data"]["id"] = incident_id
    return doc


def workflow_input(fixture: dict[str, Any], incident_id: str, entry_id: int) -> tuple[str, PostmortemWorkflowInput]:
    """What the relay hands to start_workflow for this incident: (workflow id, input).

    The event as the inbox stores it (its raw payload left out, kept with the entry) and the
    entry's id, as postmortem.app.relay builds it.
    """
    (event,) = parse_pagerduty(delivery(fixture, incident_id))
    if not isinstance(event, IncidentEvent):
        raise RuntimeError(f"the fixture {FIXTURE} is not a resolved incident: {event}")
    relayed = stored_event(incident_delivery(event))
    postmortem_id = postmortem_id_for(relayed.incident.source.value, relayed.incident.id)
    return workflow_id_for(postmortem_id), PostmortemWorkflowInput(
        postmortem_id=postmortem_id, event=relayed, delivery_id=str(entry_id)
    )


def signed_request(fixture: dict[str, Any], incident_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery(fixture, incident_id)).encode("utf-8")
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, SECRET)}


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc or repr(exc)}"[:200]


def workflow_id_of(incident_id: str) -> str:
    return workflow_id_for(postmortem_id_for("pagerduty", incident_id))


# --- the API subprocess ---------------------------------------------------------------------


class ApiProcess:
    def __init__(self, data_dir: Path, port: int, temporal_address: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.temporal_address = temporal_address
        self.base_url = f"http://127.0.0.1:{port}"
        self.stdout_file = data_dir / "api.stdout.log"
        self.stderr_file = data_dir / "api.stderr.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Only our settings: a POSTMORTEM_* variable from the caller's shell must not change the run.
        env = {key: value for key, value in os.environ.items() if not key.startswith("POSTMORTEM_")}
        env.update(
            POSTMORTEM_DATA_DIR=str(self.data_dir),
            POSTMORTEM_HOST="127.0.0.1",
            POSTMORTEM_PORT=str(self.port),
            POSTMORTEM_TEMPORAL_ADDRESS=self.temporal_address,
            POSTMORTEM_TEMPORAL_TASK_QUEUE=TASK_QUEUE,
            POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS=SECRET,
            POSTMORTEM_INBOX_RETRY_MAX_SECONDS=str(RELAY_RETRY_MAX_SECONDS),
            POSTMORTEM_LOG_LEVEL="WARNING",
        )
        with self.stdout_file.open("wb") as out, self.stderr_file.open("wb") as err:
            self.process = subprocess.Popen(
                [postmortem_command(), "api"],
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
            )

    def stderr_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.stderr_file.read_text(errors="replace").splitlines()[-lines:])
        return "(no stderr captured)"

    async def wait_healthy(self, timeout: float = API_START_TIMEOUT) -> None:
        if self.process is None:
            raise RuntimeError("the API was not started")
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"the API exited with code {code} at start-up; its stderr:\n{self.stderr_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the API did not answer /healthz within {timeout:.0f} s; its stderr:\n{self.stderr_tail()}"
                    )
                await asyncio.sleep(0.1)

    async def readiness(self, http: httpx.AsyncClient) -> dict[str, Any]:
        """/readyz as JSON (200 or 503 alike): its Temporal check and the inbox's backlog."""
        answer: dict[str, Any] = (await http.get("/readyz")).json()
        return answer

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + API_STOP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait()


# --- load generation ------------------------------------------------------------------------


@dataclass
class PhaseResult:
    requests: int
    seconds: float
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def closed_loop(calls: Sequence[Callable[[], Awaitable[str | None]]], concurrency: int) -> PhaseResult:
    """Every call at most `concurrency` at a time; a call returns None when fine, else an error key."""
    semaphore = asyncio.Semaphore(concurrency)
    errors: Counter[str] = Counter()

    async def one(call: Callable[[], Awaitable[str | None]]) -> None:
        async with semaphore:
            try:
                problem = await call()
            except Exception as exc:  # counted and reported, never fatal
                problem = describe(exc)
            if problem is not None:
                errors[problem] += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    return PhaseResult(requests=len(calls), seconds=time.perf_counter() - started, errors=errors)


def start_calls(
    client: Client, inputs: list[tuple[str, PostmortemWorkflowInput]]
) -> list[Callable[[], Awaitable[None]]]:
    def call(workflow_id: str, arg: PostmortemWorkflowInput) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            # Exactly the call the relay makes (postmortem/app/gateway.py, TemporalGateway.start_postmortem).
            await client.start_workflow(
                PostmortemWorkflow.run,
                arg,
                id=workflow_id,
                task_queue=TASK_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                rpc_timeout=START_TIMEOUT,
            )

        return run

    return [call(workflow_id, arg) for workflow_id, arg in inputs]


class Connections:
    """httpx.AsyncClients with one keep-alive connection each, lent to one request at a time.

    One shared client with a pool of C connections costs several times more CPU per request at
    C = 32 (httpcore's pool bookkeeping grows with the pool), and on a small machine that CPU is
    taken from the server under test. One client per connection keeps the load generator cheap.
    `grow` lends a new client when all are busy (the open loop never waits for a connection).
    """

    def __init__(self, base_url: str, size: int, *, grow: bool = False) -> None:
        self.base_url = base_url
        self.grow = grow
        self._all: list[httpx.AsyncClient] = []
        # Last in, first out: in the open loop a few hot connections serve, the rest stay parked.
        self._idle: asyncio.LifoQueue[httpx.AsyncClient] = asyncio.LifoQueue()
        # One TLS context for all (each client would otherwise load the CA bundle, ~50 ms apiece).
        self._tls = ssl.create_default_context()
        for _ in range(size):
            self._idle.put_nowait(self._new())

    def _new(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        client = httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=30.0, verify=self._tls)
        self._all.append(client)
        return client

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[httpx.AsyncClient]:
        if self.grow and self._idle.empty():
            client = self._new()
        else:
            client = await self._idle.get()
        try:
            yield client
        finally:
            self._idle.put_nowait(client)

    async def touch(self) -> None:
        """Untimed GET /healthz on every connection, just before a timed phase.

        Uvicorn drops a keep-alive connection after 5 s idle; a floor round lasts about that long,
        and a request sent on a connection the server is closing at that instant fails with a
        ReadError. Touching every connection first resets the server's idle timer.
        """

        async def one(client: httpx.AsyncClient) -> None:
            for attempt in range(3):
                try:
                    await client.get("/healthz")
                    return
                except httpx.TransportError:
                    if attempt == 2:
                        raise

        await asyncio.gather(*(one(client) for client in self._all))

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._all), return_exceptions=True)


def post_calls(
    connections: Connections, requests: list[tuple[bytes, dict[str, str]]], samples: dict[str, str]
) -> list[Callable[[], Awaitable[str | None]]]:
    def call(body: bytes, headers: dict[str, str]) -> Callable[[], Awaitable[str | None]]:
        async def run() -> str | None:
            async with connections.lend() as http:
                response = await http.post(WEBHOOK_PATH, content=body, headers=headers)
            if response.status_code == 202:
                return None
            key = f"HTTP {response.status_code}"
            samples.setdefault(key, response.text[:300])
            return key

        return run

    return [call(body, headers) for body, headers in requests]


@dataclass
class LatencyResult:
    rate: float
    planned: int
    seconds: float
    from_schedule_ms: list[float]
    from_send_ms: list[float]
    errors: Counter[str]

    @property
    def answered(self) -> int:
        return len(self.from_schedule_ms)


async def open_loop(calls: Sequence[Callable[[], Awaitable[str | None]]], rate: float) -> LatencyResult:
    """Fire call i at t0 + i/rate whether or not earlier ones have finished; time each one."""
    loop = asyncio.get_running_loop()
    from_schedule: list[float] = []
    from_send: list[float] = []
    errors: Counter[str] = Counter()

    async def one(call: Callable[[], Awaitable[str | None]], scheduled: float) -> None:
        sent = loop.time()
        try:
            problem = await call()
        except Exception as exc:  # counted and reported, never fatal
            problem = describe(exc)
        done = loop.time()
        if problem is not None:
            errors[problem] += 1
            return
        from_schedule.append((done - scheduled) * 1000)
        from_send.append((done - sent) * 1000)

    tasks = []
    start = loop.time() + 0.05
    for index, call in enumerate(calls):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(call, scheduled)))
    await asyncio.gather(*tasks)
    return LatencyResult(
        rate=rate,
        planned=len(calls),
        seconds=loop.time() - start,
        from_schedule_ms=from_schedule,
        from_send_ms=from_send,
        errors=errors,
    )


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN when there are no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def check_started(client: Client, workflow_ids: list[str]) -> list[str]:
    """The workflows the phases claim to have started exist on the server; returns the missing ones."""
    missing = []
    for workflow_id in workflow_ids:
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except Exception as exc:
            missing.append(f"{workflow_id}: {describe(exc)}")
    return missing


@dataclass
class DrainResult:
    """The relay emptying the backlog that was committed while Temporal was away."""

    entries: int  # pending when Temporal was back
    resumed_after: float  # seconds from Temporal back to the first entries settled
    settled_first: int  # how many the first settlement seen took off (not counted in the rate)
    seconds: float  # from that first settlement to an empty backlog
    total_seconds: float  # from Temporal back to an empty backlog
    left: int  # still pending at the deadline (0 when complete)

    @property
    def per_second(self) -> float:
        drained = self.entries - self.settled_first - self.left
        return drained / self.seconds if self.seconds > 0 else 0.0


async def backlog(api: ApiProcess, http: httpx.AsyncClient) -> int:
    value = (await api.readiness(http)).get("inbox", {}).get("backlog")
    if not isinstance(value, int):
        raise RuntimeError(f"/readyz reports no inbox backlog: {await api.readiness(http)}")
    return value


async def wait_drained(api: ApiProcess, http: httpx.AsyncClient, timeout: float = DRAIN_TIMEOUT) -> None:
    """Untimed, between phases: the relay's work of one phase must not weigh on the next."""
    deadline = time.monotonic() + timeout
    while (left := await backlog(api, http)) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the relay left {left} deliveries in the inbox after {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def measure_drain(
    api: ApiProcess, http: httpx.AsyncClient, back_at: float, timeout: float = DRAIN_TIMEOUT
) -> DrainResult:
    """Poll the backlog (every 50 ms) from Temporal's return until it is empty.

    The rate is counted from the first settlement seen, excluding what that settlement took off:
    the wait before it is the relay's retry delay, reported apart as `resumed_after`.
    """
    entries = await backlog(api, http)
    first_at: float | None = None
    settled_first = 0
    left = entries
    deadline = back_at + timeout
    while left > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        left = await backlog(api, http)
        if first_at is None and left < entries:
            first_at, settled_first = time.monotonic(), entries - left
    end = time.monotonic()
    first_at = first_at if first_at is not None else end
    return DrainResult(
        entries=entries,
        resumed_after=first_at - back_at,
        settled_first=settled_first,
        seconds=end - first_at,
        total_seconds=end - back_at,
        left=left,
    )


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def latency_line(name: str, result: LatencyResult) -> str:
    return (
        f"  {name:<52} p50 {percentile(result.from_schedule_ms, 50):7.1f} ms   "
        f"p99 {percentile(result.from_schedule_ms, 99):7.1f} ms   "
        f"({result.answered}/{result.planned} ok, {sum(result.errors.values())} errors)"
    )


@dataclass
class Results:
    floor: PhaseResult
    acks_up: PhaseResult
    acks_down: PhaseResult
    latency_up: LatencyResult
    latency_down: LatencyResult
    floor_latency: LatencyResult
    drain: DrainResult
    rounds: tuple[list[PhaseResult], list[PhaseResult]]
    missing: list[str]
    samples: dict[str, str]


def print_report(args: argparse.Namespace, temporal_address: str, r: Results) -> None:
    floor_rate = r.floor.per_second

    def ratio(rate: float) -> float:
        return rate / floor_rate if floor_rate else 0.0

    drain = r.drain
    lines = [
        "",
        f"Ingestion benchmark: {args.requests} requests per path, concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPUs, Temporal dev server at {temporal_address} (no worker)",
        "",
        f"{'path':<44} {'requests':>9} {'errors':>7} {'seconds':>8} {'per second':>11} {'ratio vs floor':>15}",
    ]
    for name, result in (
        ("bare start_workflow (floor)", r.floor),
        ("webhook acks, Temporal up", r.acks_up),
        ("webhook acks, Temporal stopped", r.acks_down),
    ):
        lines.append(
            f"{name:<44} {result.requests:>9} {result.error_count:>7} {result.seconds:>8.2f} "
            f"{result.per_second:>11.1f} {ratio(result.per_second):>14.2f}x"
        )
    drained = drain.entries - drain.settled_first - drain.left
    lines.append(
        f"{'relay drain (inbox -> started workflows)':<44} {drained:>9} {drain.left:>7} {drain.seconds:>8.2f} "
        f"{drain.per_second:>11.1f} {ratio(drain.per_second):>14.2f}x"
    )
    if len(r.rounds[0]) > 1:
        lines.append(
            "  per round (per second): floor "
            + " ".join(f"{x.per_second:.1f}" for x in r.rounds[0])
            + " | acks (Temporal up) "
            + " ".join(f"{x.per_second:.1f}" for x in r.rounds[1])
        )
    lines += [
        f"  drain: {drain.entries} entries committed while Temporal was stopped; the relay resumed "
        f"{drain.resumed_after:.1f} s after Temporal was back (retry delay up to {RELAY_RETRY_MAX_SECONDS:g} s; "
        f"its first settlement of {drain.settled_first} not in the rate), empty {drain.total_seconds:.1f} s after",
        "",
        f"Ack latency at {r.latency_up.rate:.1f} req/s (half the floor's rate), open loop for "
        f"{args.duration_seconds:g} s, measured from each request's scheduled send time:",
        latency_line("POST /webhooks/pagerduty, Temporal up", r.latency_up),
        latency_line("POST /webhooks/pagerduty, Temporal stopped", r.latency_down),
        latency_line("bare start_workflow at the same rate (reference)", r.floor_latency),
        "",
        "Targets:",
    ]
    p99_up = percentile(r.latency_up.from_schedule_ms, 99)
    p99_down = percentile(r.latency_down.from_schedule_ms, 99)
    floor_clean = r.floor.error_count == 0
    checks = [
        (
            f"acks (Temporal up) >= {TARGET_ACK_RATIO:.1f}x floor",
            f"{ratio(r.acks_up.per_second):7.2f}x",
            floor_clean and r.acks_up.error_count == 0 and ratio(r.acks_up.per_second) >= TARGET_ACK_RATIO,
        ),
        (
            f"acks (Temporal stopped) >= {TARGET_ACK_RATIO:.1f}x floor",
            f"{ratio(r.acks_down.per_second):7.2f}x",
            floor_clean and r.acks_down.error_count == 0 and ratio(r.acks_down.per_second) >= TARGET_ACK_RATIO,
        ),
        (
            f"p99 ack (Temporal up) < {TARGET_P99_MS:.0f} ms",
            f"{p99_up:7.1f} ms",
            r.latency_up.answered == r.latency_up.planned and p99_up < TARGET_P99_MS,
        ),
        (
            f"p99 ack (Temporal stopped) < {TARGET_P99_MS:.0f} ms",
            f"{p99_down:7.1f} ms",
            r.latency_down.answered == r.latency_down.planned and p99_down < TARGET_P99_MS,
        ),
        (
            f"relay drain >= {TARGET_DRAIN_RATIO:.1f}x floor",
            f"{ratio(drain.per_second):7.2f}x",
            floor_clean and drain.left == 0 and ratio(drain.per_second) >= TARGET_DRAIN_RATIO,
        ),
    ]
    lines += [f"  {name:<40} {figure:>10}   {verdict(ok)}" for name, figure, ok in checks]
    for name, errors in (
        ("floor", r.floor.errors),
        ("acks (Temporal up)", r.acks_up.errors),
        ("acks (Temporal stopped)", r.acks_down.errors),
        ("ack latency (Temporal up)", r.latency_up.errors),
        ("ack latency (Temporal stopped)", r.latency_down.errors),
        ("floor latency", r.floor_latency.errors),
    ):
        for key, count in errors.most_common(5):
            lines.append(f"  {name} error x{count}: {key}" + (f" -- {r.samples[key]}" if key in r.samples else ""))
    if drain.left:
        lines.append(f"  the relay left {drain.left} entries pending after {DRAIN_TIMEOUT:.0f} s")
    if r.missing:
        lines.append(f"  {len(r.missing)} sampled workflows were not found on the server:")
        lines += [f"    {item}" for item in r.missing[:5]]
    print("\n".join(lines), flush=True)


# --- main -----------------------------------------------------------------------------------


def status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def chunks(items: list[Any], count: int) -> list[list[Any]]:
    size = math.ceil(len(items) / count)
    return [items[i : i + size] for i in range(0, len(items), size)]


def combined(results: list[PhaseResult], samples: dict[str, str]) -> PhaseResult:
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result.errors)
    return PhaseResult(
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        errors=errors,
        samples=samples,
    )


class Ids:
    """Incident ids per phase, distinct across the run; entry ids for the floor's inputs."""

    def __init__(self) -> None:
        self.all: dict[str, list[str]] = {}

    def make(self, phase: str, count: int) -> list[str]:
        ids = self.all[phase] = [f"{phase}-{n:07d}" for n in range(count)]
        return ids

    def sampled(self) -> list[str]:
        """The first and last workflow of every phase, to check they exist on the server."""
        return [workflow_id_of(ids[i]) for ids in self.all.values() if ids for i in sorted({0, len(ids) - 1})]


async def run(args: argparse.Namespace) -> None:
    # SIGTERM cancels the run like Ctrl-C does, so the finally blocks below still clean up.
    main_task = asyncio.current_task()
    if main_task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    fixture = load_fixture()
    workdir = Path(tempfile.mkdtemp(prefix="postmortem-bench-"))
    temporal_port, ui_port, api_port = free_ports(3)
    dev = DevServer(workdir / "temporal", port=temporal_port, ui_port=ui_port)
    api = ApiProcess(workdir / "api", api_port, dev.address)
    try:
        status(f"starting the Temporal dev server on {dev.address} (data in {workdir}) ...")
        await dev.start()
        try:
            status(f"starting the API (`postmortem api`) on port {api_port} ...")
            api.start()
            await api.wait_healthy()
            results = await measure(args, fixture, dev, api)
            print_report(args, dev.address, results)
        finally:
            await api.stop()
            await dev.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(args: argparse.Namespace, fixture: dict[str, Any], dev: DevServer, api: ApiProcess) -> Results:
    client = await connect(dev.address)
    warmup = min(args.requests, 2 * args.concurrency)
    samples: dict[str, str] = {}
    ids = Ids()
    entry_ids = iter(range(1, 10**9))  # the floor's delivery ids: any distinct numbers, as the relay's are
    connections = Connections(api.base_url, args.concurrency)
    # Plenty for the open loop, and more on demand: a request never waits for a connection.
    open_connections = Connections(api.base_url, 4 * args.concurrency, grow=True)
    probe = httpx.AsyncClient(base_url=api.base_url, timeout=10.0)

    def starts(phase: str, count: int) -> list[Callable[[], Awaitable[None]]]:
        return start_calls(client, [workflow_input(fixture, i, next(entry_ids)) for i in ids.make(phase, count)])

    def posts(phase: str, count: int, pool: Connections) -> list[Callable[[], Awaitable[str | None]]]:
        return post_calls(pool, [signed_request(fixture, i) for i in ids.make(phase, count)], samples)

    try:
        # Everything is built, parsed, serialised and signed before any clock starts.
        status("preparing payloads ...")
        floor_calls = starts("floor", warmup + args.requests)
        up_calls = posts("up", warmup + args.requests, connections)
        down_calls = posts("down", args.requests, connections)

        # Warm-up (not timed): connections, the API's lazy Temporal client, the relay, code paths.
        await closed_loop(floor_calls[:warmup], args.concurrency)
        warm = await closed_loop(up_calls[:warmup], args.concurrency)
        if warm.error_count:
            status(f"warning: {warm.error_count} warm-up webhooks failed: {dict(warm.errors)} {samples}")
        async with connections.lend() as http:
            check = await http.post(WEBHOOK_PATH, **_request_kwargs(signed_request(fixture, ids.all["up"][0])))
        answer = check.json() if check.status_code == 202 else {}
        if [p.get("outcome") for p in answer.get("postmortems", [])] != ["queued"]:
            status(f"warning: unexpected webhook answer {check.status_code}: {check.text[:300]}")
        await wait_drained(api, probe)

        # 1 + 2. The floor and the acks with Temporal up, in interleaved rounds (ABBA order) so that
        # drift in the dev server (database growth, disk) weighs on both alike. After each round of
        # acks the relay drains (untimed), so its starts do not compete with the next floor round.
        floor_rounds: list[PhaseResult] = []
        ack_rounds: list[PhaseResult] = []
        pairs = list(
            zip(chunks(floor_calls[warmup:], args.rounds), chunks(up_calls[warmup:], args.rounds), strict=True)
        )
        for number, (floor_chunk, ack_chunk) in enumerate(pairs, start=1):
            order = [("floor", floor_chunk, floor_rounds), ("acks", ack_chunk, ack_rounds)]
            for name, calls, results in order if number % 2 else reversed(order):
                status(f"round {number}/{len(pairs)}: {name}, {len(calls)} at concurrency {args.concurrency} ...")
                if name == "acks":
                    await connections.touch()
                results.append(await closed_loop(calls, args.concurrency))
                if name == "acks":
                    await wait_drained(api, probe)
        floor = combined(floor_rounds, {})
        acks_up = combined(ack_rounds, samples)

        # 3. Ack latency with Temporal up, open loop at half the floor's rate (what Temporal itself
        # sustains with room to spare, so the relay keeps up); the bare call at that rate for reference.
        rate = args.latency_rate or max(floor.per_second / 2, 1.0)
        count = max(1, round(rate * args.duration_seconds))
        latency_up_calls = posts("latency-up", count, open_connections)
        latency_down_calls = posts("latency-down", count, open_connections)
        reference_calls = starts("reference", count)
        status(f"ack latency, Temporal up: {count} webhooks at {rate:.1f}/s for {args.duration_seconds:g} s ...")
        await open_connections.touch()
        latency_up = await open_loop(latency_up_calls, rate)
        await wait_drained(api, probe)
        status(f"latency reference: {count} bare start_workflow at {rate:.1f}/s ...")
        floor_latency = await open_loop(reference_calls, rate)

        # 4. Temporal stopped: the same acks and the same latency phase; the inbox keeps them all.
        status("stopping the Temporal dev server ...")
        await dev.stop()
        if (await api.readiness(probe)).get("checks", {}).get("temporal") == "ok":
            raise RuntimeError("the API still reports Temporal as ok after the dev server was stopped")
        status(f"acks, Temporal stopped: {len(down_calls)} at concurrency {args.concurrency} ...")
        await connections.touch()
        acks_down = await closed_loop(down_calls, args.concurrency)
        acks_down.samples = samples
        status(f"ack latency, Temporal stopped: {count} webhooks at {rate:.1f}/s ...")
        await open_connections.touch()
        latency_down = await open_loop(latency_down_calls, rate)

        # 5. Temporal back on the same data file: the relay drains what queued meanwhile.
        status("starting the Temporal dev server again (same data file) ...")
        await dev.start()
        back_at = time.monotonic()
        status("draining the inbox ...")
        drain = await measure_drain(api, probe, back_at)
    finally:
        await connections.aclose()
        await open_connections.aclose()
        await probe.aclose()

    client = await connect(dev.address)  # a fresh one: the first was cut when the dev server stopped
    missing = await check_started(client, ids.sampled())
    return Results(
        floor=floor,
        acks_up=acks_up,
        acks_down=acks_down,
        latency_up=latency_up,
        latency_down=latency_down,
        floor_latency=floor_latency,
        drain=drain,
        rounds=(floor_rounds, ack_rounds),
        missing=missing,
        samples=samples,
    )


def _request_kwargs(request: tuple[bytes, dict[str, str]]) -> dict[str, Any]:
    body, headers = request
    return {"content": body, "headers": headers}


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark webhook ingestion (inbox acks, Temporal up and stopped; the relay's drain) "
        "against bare start_workflow."
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per path (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument(
        "--duration-seconds", type=float, default=10.0, help="length of each latency phase (default 10)"
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=None,
        help="requests per second of the latency phases (default: half the floor's rate)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="interleave the floor and the acks (Temporal up) in this many alternating rounds (default 4; 1 = one after the other)",
    )
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1 or args.duration_seconds <= 0:
        parser.error("--requests, --concurrency and --rounds must be >= 1, --duration-seconds > 0")
    if args.latency_rate is not None and args.latency_rate <= 0:
        parser.error("--latency-rate must be > 0")
    args.rounds = min(args.rounds, args.requests)
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        status("interrupted; the dev server, the API and the temporary folder were cleaned up")
        return 130
    except RuntimeError as exc:
        status(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
