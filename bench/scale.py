"""Scale benchmark: the reads across reports on a large store, and many workflows in flight.

Run from the repository root with the project's venv:

    python bench/scale.py                                   # 100,000 reports, SQLite and PostgreSQL
    python bench/scale.py --reports 20000 --databases sqlite   # quick check
    python bench/scale.py --reports 0 --workflows 10000     # only the workflows in flight

1. Fill a store (a temporary SQLite file; PostgreSQL at `--postgres-url`, in a schema of its own,
   dropped at the end) with `--reports` reports, `--timeline-per-report` timeline entries each (the
   issue's 100,000 and 1,000,000), action items, reviews, follow-up checks, services, private and
   team-only reports: bulk inserts through the store's own tables, cloned from one report the store
   made itself (so every JSON document is one the code writes).
2. Time each read through the real app in-process (httpx over ASGI, no network), `--repeat` times, as a
   viewer who is not an admin (the visibility rule in every query): `/api/metrics`, the list with a
   filter and a sort, the action-item board (`/action-items`) and its CSV, the API's board page, a
   report (`/api/postmortems/{id}` and its page), `/insights`. The floor is a bare `SELECT COUNT(*)
   FROM postmortems` on the same store, timed the same way; each row says its ratio to it.
3. With `--workflows N`: a Temporal dev server and `postmortem worker` (a subprocess, its own SQLite
   store), N post-mortem workflows started as the relay starts them (`TemporalGateway.start_postmortem`),
   16 at a time; the time to start them against the bare start floor (the same number of
   `start_workflow` calls of a workflow no worker serves), and the worker's RSS once they all wait on
   their timers (drafted: in the store with their review meeting planned).

A benchmark, not a test: it prints figures and PASS/MISS words against the issue's targets (p99 under
100 ms for the list, the filter and `/api/metrics`; worker RSS under 1 GiB at 10,000 in flight) and
exits 0 unless something crashed. Progress on stderr, the report on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the real payloads live with the tests

from sqlalchemy import func, insert, select, text

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway, TemporalUnavailable
from postmortem.app.settings import Settings
from postmortem.config import StoreSettings
from postmortem.incident.teams_file import parse_teams
from postmortem.models import ActionItemStatus, CauseCategory, Priority, Status, Visibility
from postmortem.store.metric_columns import from_follow_up, from_metrics, from_review
from postmortem.store.store import Store
from postmortem.store.tables import (
    ActionItemRow,
    FollowUpRow,
    IncidentRow,
    PostmortemRow,
    PostmortemServiceRow,
    TimelineEntryRow,
)
from postmortem.store.tokens import Role
from postmortem.web.session import SESSION_COOKIE
from tests.factories import new_postmortem, pagerduty_event

TARGET_P99_MS = 100.0
TARGET_RSS_MB = 1024.0
NOW = datetime.now(UTC)
TEAMS = ["payments", "search", "checkout", "platform", "data", "mobile", "identity", "growth", None]
SERVICES = [f"service-{n:02d}" for n in range(60)]
PEOPLE = [f"person{n}@example.com" for n in range(200)]
VIEWER = "person7@example.com"  # not an admin, in team "payments": the visibility rule applies in full
BATCH = 2000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- fill


async def template(store: Store) -> dict[str, Any]:
    """One report the store made itself, as a row: every report of the fill is a copy of it."""
    pm, _ = await store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PSCALE0").incident))
    async with store.engine.connect() as connection:
        row = (await connection.execute(select(PostmortemRow.__table__).where(PostmortemRow.id == pm.id))).one()
        incident = (await connection.execute(select(IncidentRow.data).where(IncidentRow.postmortem_id == pm.id))).one()
    return {"row": dict(row._mapping), "incident": incident[0]}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def fill(store: Store, reports: int, timeline_per_report: int, seed: int = 15) -> float:
    """`reports` reports with their parts, inserted in batches through the store's tables; the seconds it took."""
    rng = random.Random(seed)
    shape = await template(store)
    base, incident = shape["row"], shape["incident"]
    started = time.perf_counter()
    batch: dict[Any, list[dict[str, Any]]] = {}

    async def flush() -> None:
        async with store.engine.begin() as connection:
            for table, rows in batch.items():
                if rows:
                    await connection.execute(insert(table), rows)
        batch.clear()

    for n in range(reports):
        pm_id = f"pagerduty-PSCALE{n:07d}"
        created = NOW - timedelta(minutes=rng.randint(0, 5 * 365 * 24 * 60))
        begun = created - timedelta(minutes=rng.randint(5, 600))
        closed = begun + timedelta(minutes=rng.randint(5, 600))
        status = rng.choices(
            [Status.PUBLISHED, Status.ARCHIVED, Status.DRAFT, Status.IN_REVIEW, Status.SKIPPED], [60, 15, 10, 10, 5]
        )[0]
        services = rng.sample(SERVICES, rng.randint(1, 3))
        metrics = {
            **base["metrics"],
            "started_at": _iso(begun),
            "closed_at": _iso(closed),
            "time_to_detect_seconds": rng.randint(0, 1800) if rng.random() < 0.8 else None,
            "time_to_resolve_seconds": int((closed - begun).total_seconds()),
            "services": services,
        }
        history = [
            {
                "action": "submit",
                "by": "a",
                "at": _iso(closed + timedelta(hours=2)),
                "from_status": "DRAFT",
                "to_status": "IN_REVIEW",
                "comment": None,
            },
        ]
        if status in (Status.PUBLISHED, Status.ARCHIVED):
            history.append(
                {
                    "action": "approve",
                    "by": "b",
                    "at": _iso(closed + timedelta(hours=rng.randint(3, 400))),
                    "from_status": "IN_REVIEW",
                    "to_status": "PUBLISHED",
                    "comment": None,
                }
            )
        reviewers = [
            {
                "reviewer": rng.choice(PEOPLE),
                "decision": "pending",
                "comment": None,
                "decided_at": None,
                "version": None,
            }
        ]
        visibility = rng.choices([Visibility.ORGANISATION, Visibility.TEAM, Visibility.PRIVATE], [80, 15, 5])[0]
        review = {
            "status": status.value,
            "reviewers": reviewers,
            "history": history,
            "published_count": 1 if len(history) > 1 else 0,
            "published_version": None,
            "public_slug": None,
        }
        batch.setdefault(PostmortemRow.__table__, []).append(
            {
                **base,
                **from_metrics(metrics, created),  # the columns the store writes with these documents
                **from_review(review),
                "id": pm_id,
                "title": f"Incident {n}: {' '.join(services)} degraded",
                "status": status.value,
                "team": rng.choice(TEAMS),
                "metrics": metrics,
                "workflow_id": f"postmortem-{pm_id}",
                "review": review,
                "visibility": visibility.value,
                "author": rng.choice(PEOPLE),
                "cause_category": rng.choice([None, *[c.value for c in CauseCategory]]),
                "created_at": created,
                "updated_at": created + timedelta(hours=rng.randint(0, 500)),
            }
        )
        batch.setdefault(PostmortemServiceRow.__table__, []).extend(
            {"postmortem_id": pm_id, "service": service} for service in services
        )
        batch.setdefault(IncidentRow.__table__, []).append(
            {
                "postmortem_id": pm_id,
                "source": "pagerduty",
                "incident_id": f"PSCALE{n:07d}",
                "data": {**incident, "id": f"PSCALE{n:07d}"},
                "created_at": created,
            }
        )
        for k in range(rng.randint(0, 4)):
            item_status = rng.choice(list(ActionItemStatus))
            batch.setdefault(ActionItemRow.__table__, []).append(
                {
                    "id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "postmortem_id": pm_id,
                    "description": f"fix {k}",
                    "owner": rng.choice([None, *PEOPLE[:20]]),
                    "due_date": (created + timedelta(days=rng.randint(-5, 90))).date() if rng.random() < 0.8 else None,
                    "priority": rng.choice(list(Priority)).value,
                    "status": item_status.value,
                    "ticket_key": None,
                    "ticket_url": None,
                    "ticket_tracker": None,
                    "completed_at": created + timedelta(days=rng.randint(1, 80))
                    if item_status == ActionItemStatus.COMPLETED
                    else None,
                    "version": 1,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        if status in (Status.PUBLISHED, Status.ARCHIVED):
            for day in (30, 60, 90)[: rng.randint(0, 3)]:
                data: dict[str, Any] = {"open_items": rng.randint(0, 3)}
                if day == 90:
                    data["verdict"] = {"worked": rng.random() < 0.8}
                batch.setdefault(FollowUpRow.__table__, []).append(
                    {"postmortem_id": pm_id, "day": day, "data": data, "checked_at": created + timedelta(days=day)}
                )
                batch[PostmortemRow.__table__][-1].update(from_follow_up(data))  # the latest check's verdict
        for k in range(timeline_per_report):
            batch.setdefault(TimelineEntryRow.__table__, []).append(
                {
                    "postmortem_id": pm_id,
                    "key": f"pagerduty:log:{k}",
                    "at": begun + timedelta(minutes=k),
                    "kind": "note",
                    "source": "pagerduty",
                    "actor": rng.choice(PEOPLE),
                    "text": f"step {k} of the response",
                    "evidence_url": None,
                    "incident_id": f"PSCALE{n:07d}",
                    "people": None,
                }
            )
        if (n + 1) % BATCH == 0:
            await flush()
            if (n + 1) % (BATCH * 10) == 0:
                log(f"  {n + 1} reports in {time.perf_counter() - started:.0f} s")
    await flush()
    if store.engine.dialect.name == "postgresql":
        async with store.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    else:
        async with store.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------- reads


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await call()  # warm
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def reads(store: Store, folder: Path, repeat: int) -> list[tuple[str, list[float]]]:
    settings = Settings(store=StoreSettings(data_dir=folder))
    gateway = TemporalGateway("127.0.0.1:1", "default", "unused")  # the reads never reach Temporal
    app = create_app(Services(settings=settings, store=store, temporal=gateway, teams=parse_teams("")))
    _, viewer = await store.tokens.create(VIEWER, Role.VIEWER, NOW, team="payments")
    _, admin = await store.tokens.create("admin@example.com", Role.ADMIN, NOW)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
        auth = {"Authorization": f"Bearer {viewer}"}
        cookie = {"Cookie": f"{SESSION_COOKIE}={viewer}"}
        async with store.engine.connect() as connection:
            some = (
                await connection.execute(
                    select(PostmortemRow.id).where(PostmortemRow.visibility == "organisation").limit(1)
                )
            ).scalar_one()

        async def get(path: str, headers: dict[str, str], **params: str) -> None:
            answer = await http.get(path, headers=headers, params=params)
            if answer.status_code != 200:
                raise RuntimeError(f"{path} {params}: {answer.status_code} {answer.text[:300]}")

        async def floor() -> None:
            async with store.engine.connect() as connection:
                await connection.execute(select(func.count()).select_from(PostmortemRow))

        calls: list[tuple[str, Callable[[], Awaitable[Any]], int]] = [
            ("floor: SELECT COUNT(*) FROM postmortems", floor, repeat),
            ("GET /api/metrics (viewer)", lambda: get("/api/metrics", auth), repeat),
            ("GET /api/metrics (admin)", lambda: get("/api/metrics", {"Authorization": f"Bearer {admin}"}), repeat),
            (
                "GET /api/metrics?team=payments&from=…",
                lambda: get("/api/metrics", auth, team="payments", **{"from": _iso(NOW - timedelta(days=365))}),
                repeat,
            ),
            ("GET /api/postmortems (newest 50)", lambda: get("/api/postmortems", auth), repeat),
            (
                "GET /api/postmortems?team=…&sort=updated",
                lambda: get("/api/postmortems", auth, team="search", sort="updated"),
                repeat,
            ),
            (
                "GET /api/postmortems?service=…&status=…",
                lambda: get("/api/postmortems", auth, service="service-07", status="PUBLISHED"),
                repeat,
            ),
            (
                "GET /api/action-items?limit=50&overdue",
                lambda: get("/api/action-items", auth, limit="50", overdue="true"),
                repeat,
            ),
            ("GET /action-items (board page)", lambda: get("/action-items", cookie), repeat),
            (
                "GET /action-items?owner=… (board page)",
                lambda: get("/action-items", cookie, owner="person3@example.com"),
                repeat,
            ),
            ("GET /action-items.csv (every row)", lambda: get("/action-items.csv", cookie), max(3, repeat // 10)),
            ("GET /api/postmortems/{id}", lambda: get(f"/api/postmortems/{some}", auth), repeat),
            ("GET /postmortems/{id} (report page)", lambda: get(f"/postmortems/{some}", cookie), repeat),
            ("GET /insights", lambda: get("/insights", cookie), max(3, repeat // 5)),
        ]
        results = []
        for name, call, times in calls:
            log(f"  {name}")
            results.append((name, await timed(call, times)))
        return results


def report_reads(
    database: str, reports: int, entries: int, seconds: float, rows: list[tuple[str, list[float]]]
) -> None:
    floor = statistics.median(rows[0][1])
    print(f"\n{database}: {reports} reports, {entries} timeline entries (filled in {seconds:.1f} s)")
    print(f"  {'':<44} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'× floor':>9}")
    for name, ms in rows:
        p50 = statistics.median(ms)
        print(f"  {name:<44} {p50:9.1f} {percentile(ms, 0.99):9.1f} {max(ms):9.1f} {p50 / floor:9.1f}")
    for name, ms in rows:
        if name.startswith(("GET /api/metrics", "GET /api/postmortems (", "GET /api/postmortems?")):
            p99 = percentile(ms, 0.99)
            word = "PASS" if p99 < TARGET_P99_MS else "MISS"
            print(f"  {word}  {name}: p99 {p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms)")


async def bench_store(url: str, database: str, args: argparse.Namespace, folder: Path) -> None:
    schema = f"bench_scale_{uuid.uuid4().hex[:10]}" if database == "postgresql" else None
    log(f"{database}: filling {args.reports} reports")
    store = await Store.open(url, schema=schema)
    try:
        seconds = await fill(store, args.reports, args.timeline_per_report)
        async with store.engine.connect() as connection:
            reports = (await connection.execute(select(func.count()).select_from(PostmortemRow))).scalar_one()
            entries = (await connection.execute(select(func.count()).select_from(TimelineEntryRow))).scalar_one()
        report_reads(database, reports, entries, seconds, await reads(store, folder, args.repeat))
    finally:
        if schema is not None:
            async with store.engine.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await store.close()


# ---------------------------------------------------------------------------------------------- workflows


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def bench_workflows(count: int, folder: Path) -> None:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from postmortem.app.devserver import DevServer
    from postmortem.workflows.identity import postmortem_id_for
    from postmortem.workflows.inputs import PostmortemWorkflowInput
    from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

    data = folder / "workflows"
    data.mkdir()
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    server = DevServer(data / "temporal", port=ports[0], ui_port=ports[1])
    await server.start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        address = server.address
        store_url = f"sqlite+aiosqlite:///{data / 'postmortem.db'}"
        # Only our settings: a POSTMORTEM_* variable from the caller's shell must not change the run.
        env = {key: value for key, value in os.environ.items() if not key.startswith("POSTMORTEM_")}
        env.update(POSTMORTEM_TEMPORAL_ADDRESS=address, POSTMORTEM_DATA_DIR=str(data), POSTMORTEM_LOG_LEVEL="WARNING")
        store = await Store.open(store_url)  # migrated before the worker starts on it
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        settings = Settings()
        gateway = TemporalGateway(address, "default", settings.temporal.task_queue, client=client)

        async def in_batches(make: Callable[[int], Awaitable[Any]]) -> float:
            started = time.perf_counter()
            for first in range(0, count, 16):
                await asyncio.gather(*(make(n) for n in range(first, min(first + 16, count))))
            return time.perf_counter() - started

        log(f"workflows: the floor ({count} bare starts)")
        events = [pagerduty_event(f"PFLIGHT{n:06d}") for n in range(count)]
        floor = await in_batches(
            lambda n: client.start_workflow(
                PostmortemWorkflow.run,
                PostmortemWorkflowInput(postmortem_id=f"floor-{n}", event=events[n]),
                id=f"floor-{n}",
                task_queue="nobody-serves-this",
            )
        )
        log("workflows: starting the worker")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("postmortem")), "worker"],
            env=env,
            cwd=data,
            stdout=subprocess.DEVNULL,
            stderr=open(data / "worker.log", "wb"),
            start_new_session=True,
        )

        async def start(n: int) -> None:
            for attempt in range(5):  # as the relay does: a start that timed out is tried again
                try:
                    await gateway.start_postmortem(postmortem_id_for("pagerduty", f"PFLIGHT{n:06d}"), events[n])
                    return
                except TemporalUnavailable:
                    retried.append(n)
                    await asyncio.sleep(0.5 * (attempt + 1))
            raise RuntimeError(f"workflow {n} did not start")

        retried: list[int] = []
        log(f"workflows: starting {count} post-mortem workflows")
        ours = await in_batches(start)
        log("workflows: waiting until every report is drafted (waiting on its timers)")
        deadline = time.monotonic() + max(600.0, count * 0.5)
        drafted = 0
        started = time.perf_counter()
        while time.monotonic() < deadline:
            async with store.engine.connect() as connection:
                drafted = (await connection.execute(select(func.count()).select_from(PostmortemRow))).scalar_one()
            if drafted >= count or worker.poll() is not None:
                break
            await asyncio.sleep(1.0)
        settle = time.perf_counter() - started
        rss = rss_mb(worker.pid) if worker.poll() is None else 0.0
        print(f"\nWorkflows in flight ({count}) on the Temporal dev server:")
        print(f"  floor: {count} bare start_workflow   {floor:8.1f} s  {count / floor:8.1f}/s")
        print(
            f"  ours:  {count} start_postmortem      {ours:8.1f} s  {count / ours:8.1f}/s  ({floor / ours:.2f}× floor)"
        )
        print(f"  starts tried again after a timeout: {len(retried)}")
        print(f"  drafted and waiting on their timers: {drafted} of {count} after {settle:.1f} s more")
        word = "PASS" if 0 < rss < TARGET_RSS_MB else "MISS"
        print(
            f"  {word}  worker RSS {rss:.1f} MiB with {drafted} in flight (target < {TARGET_RSS_MB:.0f} MiB at 10,000)"
        )
        await store.close()
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        await server.stop()


# ---------------------------------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pm-scale-"))
    try:
        if args.reports > 0:
            for database in args.databases.split(","):
                url = f"sqlite+aiosqlite:///{folder / 'scale.db'}" if database == "sqlite" else args.postgres_url
                await bench_store(url, database, args, folder)
        if args.workflows > 0:
            await bench_workflows(args.workflows, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=100_000, help="reports in the store (0: no store phase)")
    parser.add_argument("--timeline-per-report", type=int, default=10, help="timeline entries per report")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("POSTMORTEM_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per read")
    parser.add_argument("--workflows", type=int, default=0, help="post-mortem workflows in flight (the issue: 10000)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
