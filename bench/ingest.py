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
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from postmortem.devserver import DevServer
from postmortem.gateway import START_TIMEOUT
from postmortem.models import IncidentEvent
from postmortem.temporal import connect
from postmortem.webhooks.pagerduty import parse_pagerduty
from postmortem.webhooks.pagerduty_signature import HEADER as SIGNATURE_HEADER
from postmortem.webhooks.pagerduty_signature import sign
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT.parent / "shared" / "fixtures" / "pagerduty_v3_incident_resolved.json"
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
    if not FIXTURE.exists():
        raise SystemExit(f"error: fixture not found: {FIXTURE}")
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def delivery(fixture: dict[str, Any], incident_id: str) -> dict[str, Any]:
    """The fixture as PagerDuty would send it for another incident."""
    doc = copy.deepcopy(fixture)
    doc["event"]["data"]["id"] = incident_id
    return doc


def workflow_input(fixture: dict[str, Any], incident_id: str) -> tuple[str, PostmortemWorkflowInput]:
    """What the webhook path hands to start_workflow for this incident: (workflow id, input)."""
    (event,) = parse_pagerduty(delivery(fixture, incident_id))
    assert isinstance(event, IncidentEvent)
    postmortem_id = postmortem_id_for(event.incident.source.value, event.incident.id)
    return workflow_id_for(postmortem_id), PostmortemWorkflowInput(postmortem_id=postmortem_id, event=event)


def signed_request(fixture: dict[str, Any], incident_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery(fixture, incident_id)).encode("utf-8")
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, SECRET)}


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
                [postmortem_command(), "api"], env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
            )

    def stderr_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.stderr_file.read_text(errors="replace").splitlines()[-lines:])
        return "(no stderr captured)"

    async def wait_healthy(self, timeout: float = API_START_TIMEOUT) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(f"the API exited with code {code} at start-up; its stderr:\n{self.stderr_tail()}")
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


async def closed_loop(calls: list[Callable[[], Awaitable[str | None]]], concurrency: int) -> PhaseResult:
    """Every call at most `concurrency` at a time; a call returns None when fine, else an error key."""
    semaphore = asyncio.Semaphore(concurrency)
    errors: Counter[str] = Counter()

    async def one(call: Callable[[], Awaitable[str | None]]) -> None:
        async with semaphore:
            try:
                problem = await call()
            except Exception as exc:  # counted and reported, never fatal
                problem = f"{type(exc).__name__}: {exc}"[:200]
            if problem is not None:
                errors[problem] += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    return PhaseResult(requests=len(calls), seconds=time.perf_counter() - started, errors=errors)


def start_calls(client: Client, inputs: list[tuple[str, PostmortemWorkflowInput]]) -> list[Callable[[], Awaitable[None]]]:
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


def post_calls(
    http: httpx.AsyncClient, requests: list[tuple[bytes, dict[str, str]]], samples: dict[str, str]
) -> list[Callable[[], Awaitable[str | None]]]:
    def call(body: bytes, headers: dict[str, str]) -> Callable[[], Awaitable[str | None]]:
        async def run() -> str | None:
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
    samples: dict[str, str]


async def open_loop(
    http: httpx.AsyncClient, requests: list[tuple[bytes, dict[str, str]]], rate: float
) -> LatencyResult:
    """Fire request i at t0 + i/rate whether or not earlier ones have answered."""
    loop = asyncio.get_running_loop()
    from_schedule: list[float] = []
    from_send: list[float] = []
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}

    async def one(body: bytes, headers: dict[str, str], scheduled: float) -> None:
        sent = loop.time()
        try:
            response = await http.post(WEBHOOK_PATH, content=body, headers=headers)
        except Exception as exc:
            errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
            return
        done = loop.time()
        if response.status_code != 202:
            key = f"HTTP {response.status_code}"
            errors[key] += 1
            samples.setdefault(key, response.text[:300])
            return
        from_schedule.append((done - scheduled) * 1000)
        from_send.append((done - sent) * 1000)

    tasks = []
    start = loop.time() + 0.05
    for index, (body, headers) in enumerate(requests):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(body, headers, scheduled)))
    await asyncio.gather(*tasks)
    return LatencyResult(
        rate=rate, planned=len(requests), seconds=loop.time() - start, from_schedule_ms=from_schedule,
        from_send_ms=from_send, errors=errors, samples=samples,
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
            missing.append(f"{workflow_id}: {type(exc).__name__}: {exc}")
    return missing


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(
    args: argparse.Namespace, temporal_address: str, floor: PhaseResult, ours: PhaseResult, latency: LatencyResult,
    missing: list[str],
) -> None:
    ratio = ours.per_second / floor.per_second if floor.per_second else 0.0
    p50 = percentile(latency.from_schedule_ms, 50)
    p99 = percentile(latency.from_schedule_ms, 99)
    send_p50 = percentile(latency.from_send_ms, 50)
    send_p99 = percentile(latency.from_send_ms, 99)
    cpus = os.cpu_count() or 0
    lines = [
        "",
        f"Ingestion benchmark: {args.requests} requests per path, concurrency {args.concurrency}, "
        f"{cpus} CPUs, Temporal dev server at {temporal_address}, no worker",
        "",
        f"{'path':<30} {'requests':>9} {'errors':>7} {'seconds':>8} {'per second':>11} {'ratio vs floor':>15}",
    ]
    for name, result in (("bare start_workflow (floor)", floor), ("POST /webhooks/pagerduty", ours)):
        row_ratio = result.per_second / floor.per_second if floor.per_second else 0.0
        lines.append(
            f"{name:<30} {result.requests:>9} {result.error_count:>7} {result.seconds:>8.2f} "
            f"{result.per_second:>11.1f} {row_ratio:>14.2f}x"
        )
    answered = len(latency.from_schedule_ms)
    lines += [
        "",
        f"Latency of POST /webhooks/pagerduty at {latency.rate:.1f} req/s (half our peak), open loop, "
        f"{latency.planned} requests over {latency.seconds:.1f} s, {answered} answered 202, "
        f"{sum(latency.errors.values())} errors:",
        f"  from scheduled send time   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms",
        f"  from actual send           p50 {send_p50:7.1f} ms   p99 {send_p99:7.1f} ms",
        "",
        "Targets:",
    ]
    throughput_ok = ratio >= TARGET_RATIO and ours.error_count == 0 and floor.error_count == 0
    latency_ok = answered > 0 and not latency.errors and p99 < TARGET_P99_MS
    lines += [
        f"  webhook throughput >= {TARGET_RATIO:.1f}x floor   {ratio:6.2f}x    {verdict(throughput_ok)}"
        + ("" if ours.error_count == 0 and floor.error_count == 0 else "  (errors: see below)"),
        f"  webhook p99 latency < {TARGET_P99_MS:.0f} ms      {p99:6.1f} ms  {verdict(latency_ok)}"
        + ("" if not latency.errors else "  (errors: see below)"),
    ]
    for name, errors, samples in (
        ("floor", floor.errors, floor.samples),
        ("webhooks", ours.errors, ours.samples),
        ("latency phase", latency.errors, latency.samples),
    ):
        for key, count in errors.most_common(5):
            lines.append(f"  {name} error x{count}: {key}" + (f" — {samples[key]}" if key in samples else ""))
    if missing:
        lines.append(f"  {len(missing)} sampled workflows were not found on the server:")
        lines += [f"    {item}" for item in missing[:5]]
    print("\n".join(lines), flush=True)


# --- main -----------------------------------------------------------------------------------


def status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> None:
    fixture = load_fixture()
    workdir = Path(tempfile.mkdtemp(prefix="postmortem-bench-"))
    temporal_port, ui_port, api_port = free_ports(3)
    dev = DevServer(workdir / "temporal", port=temporal_port, ui_port=ui_port)
    api = ApiProcess(workdir / "api", api_port, dev.address)
    try:
        status(f"starting the Temporal dev server on {dev.address} (data in {workdir}) …")
        await dev.start()
        try:
            status(f"starting the API (`postmortem api`) on port {api_port} …")
            api.start()
            await api.wait_healthy()
            client = await connect(dev.address)
            warmup = min(args.requests, 2 * args.concurrency)

            # 1. The floor: bare start_workflow from this process.
            floor_ids = [f"floor-{n:07d}" for n in range(warmup + args.requests)]
            floor_inputs = [workflow_input(fixture, incident_id) for incident_id in floor_ids]
            await closed_loop(start_calls(client, floor_inputs[:warmup]), args.concurrency)
            status(f"floor: {args.requests} start_workflow calls at concurrency {args.concurrency} …")
            floor = await closed_loop(start_calls(client, floor_inputs[warmup:]), args.concurrency)

            # 2. Our path: signed webhooks to the API subprocess.
            hook_ids = [f"hook-{n:07d}" for n in range(warmup + args.requests)]
            hook_requests = [signed_request(fixture, incident_id) for incident_id in hook_ids]
            limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
            async with httpx.AsyncClient(base_url=api.base_url, limits=limits, timeout=30.0) as http:
                warm_samples: dict[str, str] = {}
                warm = await closed_loop(post_calls(http, hook_requests[:warmup], warm_samples), args.concurrency)
                if warm.error_count:
                    status(f"warning: {warm.error_count} warm-up webhooks failed: {dict(warm.errors)} {warm_samples}")
                check = await http.post(WEBHOOK_PATH, content=hook_requests[0][0], headers=hook_requests[0][1])
                answer = check.json() if check.status_code == 202 else {}
                if [p.get("outcome") for p in answer.get("postmortems", [])] != ["accepted"]:
                    status(f"warning: unexpected webhook answer {check.status_code}: {check.text[:300]}")
                status(f"webhooks: {args.requests} signed POST {WEBHOOK_PATH} at concurrency {args.concurrency} …")
                samples: dict[str, str] = {}
                ours = await closed_loop(post_calls(http, hook_requests[warmup:], samples), args.concurrency)
                ours.samples = samples

            # 3. Latency at half our peak, open loop.
            rate = max(ours.per_second / 2, 1.0)
            count = max(1, int(rate * args.duration_seconds))
            latency_ids = [f"latency-{n:07d}" for n in range(count)]
            latency_requests = [signed_request(fixture, incident_id) for incident_id in latency_ids]
            status(f"latency: {count} webhooks at {rate:.1f}/s for {args.duration_seconds:g} s (open loop) …")
            open_limits = httpx.Limits(max_connections=1000, max_keepalive_connections=256)
            async with httpx.AsyncClient(base_url=api.base_url, limits=open_limits, timeout=30.0) as http:
                latency = await open_loop(http, latency_requests, rate)

            sampled = [
                workflow_id_of(ids[i])
                for ids, first in ((floor_ids, warmup), (hook_ids, warmup), (latency_ids, 0))
                for i in {first, len(ids) - 1}
            ]
            missing = await check_started(client, sampled)
            print_report(args, dev.address, floor, ours, latency, missing)
        finally:
            await api.stop()
            await dev.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark webhook ingestion against bare start_workflow.")
    parser.add_argument("--requests", type=int, default=2000, help="requests per path (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument(
        "--duration-seconds", type=float, default=10.0, help="length of the latency phase (default 10)"
    )
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.duration_seconds <= 0:
        parser.error("--requests and --concurrency must be >= 1, --duration-seconds > 0")
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        status("interrupted")
        return 130
    except RuntimeError as exc:
        status(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
