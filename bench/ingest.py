"""Ingestion benchmark: a signed PagerDuty webhook in, a started PostmortemWorkflow out.

Run from the repository root with the project's venv:

    python bench/ingest.py [--requests 2000] [--concurrency 32] [--duration-seconds 10]

It starts its own Temporal dev server (temporary data folder, free ports) and the real API as a
subprocess (`postmortem api`), then measures:

1. the floor: bare `client.start_workflow` calls from this process, at the same concurrency and
   with the same workflow input the webhook path builds;
2. our path: signed `POST /webhooks/pagerduty` requests to the API subprocess, every answer 202;
3. latency: an open-loop schedule at half of our measured rate for --duration-seconds.

No worker runs: the workflows are started and stay pending, which is all ingestion needs.
This is a benchmark, not a test: it reports PASS/MISS against the targets and exits 0 unless
something crashed.

One file of over 300 lines on purpose: it is run as a script (`python bench/ingest.py`, no package
to import from) and read top to bottom as one experiment: the set-up (dev server, API subprocess,
signed requests), the three measurements, the report. Nothing in it is used elsewhere.
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
TARGET_RATIO = 0.8
TARGET_P99_MS = 50.0


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


def workflow_input(fixture: dict[str, Any], incident_id: str) -> tuple[str, PostmortemWorkflowInput]:
    """What the webhook path hands to start_workflow for this incident: (workflow id, input)."""
    (event,) = parse_pagerduty(delivery(fixture, incident_id))
    if not isinstance(event, IncidentEvent):
        raise RuntimeError(f"the fixture {FIXTURE} is not a resolved incident: {event}")
    postmortem_id = postmortem_id_for(event.incident.source.value, event.incident.id)
    return workflow_id_for(postmortem_id), PostmortemWorkflowInput(postmortem_id=postmortem_id, event=event)


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
            # Exactly the call the gateway makes (postmortem/gateway.py, TemporalGateway.start_postmortem).
            await client.start_workflow(
                PostmortemWorkflow.run,
                arg,
                id=workflow_id,
                task_queue=TASK_QUEUE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
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


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def latency_lines(name: str, result: LatencyResult) -> list[str]:
    return [
        f"  {name:<50} p50 {percentile(result.from_schedule_ms, 50):7.1f} ms   "
        f"p99 {percentile(result.from_schedule_ms, 99):7.1f} ms   "
        f"({result.answered}/{result.planned} ok, {sum(result.errors.values())} errors)",
    ]


def print_report(
    args: argparse.Namespace,
    temporal_address: str,
    floor: PhaseResult,
    ours: PhaseResult,
    latency: LatencyResult,
    floor_latency: LatencyResult,
    missing: list[str],
    rounds: tuple[list[PhaseResult], list[PhaseResult]],
) -> None:
    ratio = ours.per_second / floor.per_second if floor.per_second else 0.0
    p99 = percentile(latency.from_schedule_ms, 99)
    lines = [
        "",
        f"Ingestion benchmark: {args.requests} requests per path in {args.rounds} interleaved round(s), "
        f"concurrency {args.concurrency}, {os.cpu_count()} CPUs, Temporal dev server at {temporal_address} "
        "(no worker)",
        "",
        f"{'path':<30} {'requests':>9} {'errors':>7} {'seconds':>8} {'per second':>11} {'ratio vs floor':>15}",
    ]
    for name, result in (("bare start_workflow (floor)", floor), ("POST /webhooks/pagerduty", ours)):
        row_ratio = result.per_second / floor.per_second if floor.per_second else 0.0
        lines.append(
            f"{name:<30} {result.requests:>9} {result.error_count:>7} {result.seconds:>8.2f} "
            f"{result.per_second:>11.1f} {row_ratio:>14.2f}x"
        )
    if len(rounds[0]) > 1:
        lines.append(
            "  per round (per second): floor "
            + " ".join(f"{r.per_second:.1f}" for r in rounds[0])
            + " | webhooks "
            + " ".join(f"{r.per_second:.1f}" for r in rounds[1])
        )
    lines += [
        "",
        f"Latency at {latency.rate:.1f} req/s (half the webhook rate above), open loop for "
        f"{args.duration_seconds:g} s, measured from each request's scheduled send time:",
        *latency_lines("POST /webhooks/pagerduty", latency),
        *latency_lines("bare start_workflow at the same rate (reference)", floor_latency),
        f"  (POST /webhooks/pagerduty from actual send: p50 {percentile(latency.from_send_ms, 50):.1f} ms, "
        f"p99 {percentile(latency.from_send_ms, 99):.1f} ms)",
        "",
        "Targets:",
    ]
    clean = ours.error_count == 0 and floor.error_count == 0
    throughput_ok = clean and ratio >= TARGET_RATIO
    latency_ok = latency.answered == latency.planned and p99 < TARGET_P99_MS
    lines += [
        f"  webhook throughput >= {TARGET_RATIO:.1f}x floor   {ratio:7.2f}x    {verdict(throughput_ok)}"
        + ("" if clean else "  (errors: see below)"),
        f"  webhook p99 latency < {TARGET_P99_MS:.0f} ms      {p99:7.1f} ms  {verdict(latency_ok)}"
        + ("" if not latency.errors else "  (errors: see below)"),
    ]
    for name, errors, samples in (
        ("floor", floor.errors, floor.samples),
        ("webhooks", ours.errors, ours.samples),
        ("webhook latency phase", latency.errors, ours.samples),
        ("floor latency phase", floor_latency.errors, {}),
    ):
        for key, count in errors.most_common(5):
            lines.append(f"  {name} error x{count}: {key}" + (f" -- {samples[key]}" if key in samples else ""))
    if missing:
        lines.append(f"  {len(missing)} sampled workflows were not found on the server:")
        lines += [f"    {item}" for item in missing[:5]]
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
            client = await connect(dev.address)
            warmup = min(args.requests, 2 * args.concurrency)
            samples: dict[str, str] = {}
            connections = Connections(api.base_url, args.concurrency)
            # Plenty for the open loop, and more on demand: a request never waits for a connection.
            open_connections = Connections(api.base_url, 4 * args.concurrency, grow=True)
            try:
                # Everything is built, parsed, serialised and signed before any clock starts.
                status("preparing payloads ...")
                floor_ids = [f"floor-{n:07d}" for n in range(warmup + args.requests)]
                hook_ids = [f"hook-{n:07d}" for n in range(warmup + args.requests)]
                floor_calls = start_calls(client, [workflow_input(fixture, i) for i in floor_ids])
                hook_calls = post_calls(connections, [signed_request(fixture, i) for i in hook_ids], samples)

                # Warm-up (not timed): connections, the API's lazy Temporal client, code paths.
                await closed_loop(floor_calls[:warmup], args.concurrency)
                warm = await closed_loop(hook_calls[:warmup], args.concurrency)
                if warm.error_count:
                    status(f"warning: {warm.error_count} warm-up webhooks failed: {dict(warm.errors)} {samples}")
                async with connections.lend() as http:
                    check = await http.post(WEBHOOK_PATH, **_request_kwargs(signed_request(fixture, hook_ids[0])))
                answer = check.json() if check.status_code == 202 else {}
                if [p.get("outcome") for p in answer.get("postmortems", [])] != ["accepted"]:
                    status(f"warning: unexpected webhook answer {check.status_code}: {check.text[:300]}")

                # 1 + 2. The floor and our path, in interleaved rounds (ABBA order) so that drift in
                # the dev server (database growth, disk) weighs on both alike.
                floor_rounds: list[PhaseResult] = []
                hook_rounds: list[PhaseResult] = []
                pairs = list(
                    zip(
                        chunks(floor_calls[warmup:], args.rounds), chunks(hook_calls[warmup:], args.rounds), strict=True
                    )
                )
                for number, (floor_chunk, hook_chunk) in enumerate(pairs, start=1):
                    order = [("floor", floor_chunk, floor_rounds), ("webhooks", hook_chunk, hook_rounds)]
                    for name, calls, results in order if number % 2 else reversed(order):
                        status(
                            f"round {number}/{len(pairs)}: {name}, {len(calls)} at concurrency {args.concurrency} ..."
                        )
                        if name == "webhooks":
                            await connections.touch()
                        results.append(await closed_loop(calls, args.concurrency))
                floor = combined(floor_rounds, {})
                ours = combined(hook_rounds, samples)

                # 3. Latency at half our measured rate, open loop; the bare call at that rate for reference.
                rate = max(ours.per_second / 2, 1.0)
                count = max(1, round(rate * args.duration_seconds))
                latency_ids = [f"latency-{n:07d}" for n in range(count)]
                reference_ids = [f"reference-{n:07d}" for n in range(count)]
                latency_calls = post_calls(open_connections, [signed_request(fixture, i) for i in latency_ids], samples)
                reference_calls = start_calls(client, [workflow_input(fixture, i) for i in reference_ids])
                status(f"latency: {count} webhooks at {rate:.1f}/s for {args.duration_seconds:g} s (open loop) ...")
                await open_connections.touch()
                latency = await open_loop(latency_calls, rate)
                status(f"latency reference: {count} bare start_workflow at {rate:.1f}/s ...")
                floor_latency = await open_loop(reference_calls, rate)
            finally:
                await connections.aclose()
                await open_connections.aclose()

            sampled = [
                workflow_id_of(ids[i])
                for ids, first in ((floor_ids, warmup), (hook_ids, warmup), (latency_ids, 0), (reference_ids, 0))
                for i in sorted({first, len(ids) - 1})
            ]
            missing = await check_started(client, sampled)
            print_report(args, dev.address, floor, ours, latency, floor_latency, missing, (floor_rounds, hook_rounds))
        finally:
            await api.stop()
            await dev.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _request_kwargs(request: tuple[bytes, dict[str, str]]) -> dict[str, Any]:
    body, headers = request
    return {"content": body, "headers": headers}


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark webhook ingestion against bare start_workflow.")
    parser.add_argument("--requests", type=int, default=2000, help="requests per path (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument(
        "--duration-seconds", type=float, default=10.0, help="length of each latency phase (default 10)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="interleave the two throughput phases in this many alternating rounds (default 4; 1 = one after the other)",
    )
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1 or args.duration_seconds <= 0:
        parser.error("--requests, --concurrency and --rounds must be >= 1, --duration-seconds > 0")
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
