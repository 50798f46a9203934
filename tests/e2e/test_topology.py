"""The production topology without Docker: the compose file's own commands as processes.

A separately started Temporal dev server, this machine's PostgreSQL (a fresh schema), `postmortem
migrate` once, then two `postmortem api` and two `postmortem worker` processes, each started with its
compose service's `command` and environment (hosts, ports and secrets replaced by this machine's).
Signed PagerDuty webhooks are spread over both APIs (each also delivered again to the other one);
then one worker and one API are SIGKILLed while those reports are still in flight, and more webhooks
go to the API left. Every 202 must end as exactly one report, and the inbox with nothing pending or
failed: the relays of both APIs share it through leases (`FOR UPDATE SKIP LOCKED`), the killed API's
leases run out and are taken over, and the killed worker's tasks are retried by the other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from postmortem.store.inbox import InboxState
from postmortem.store.store import Store
from tests.compose_file import environment, service
from tests.reliability.service import PAGERDUTY, SECRET, report_id, report_ids, resolve_body, signed
from tests.support import binary, eventually, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.slow]  # the slower tier: `scripts/test.sh -m slow`

ADMIN = "topology-admin-token"
BEFORE_KILL = 24  # incidents sent to both APIs, all answered, before the kills
BURST = 40  # incidents sent at once to the API that is killed once KILL_AFTER of them are answered
KILL_AFTER = 8
AFTER_KILL = 16  # incidents sent to the API left


def command(name: str) -> list[str]:
    """The compose service's command, its `postmortem` being this environment's."""
    words = service(name)["command"]
    assert words[0] == "postmortem", words
    return [str(Path(sys.executable).parent / "postmortem"), *words[1:]]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def alive(self) -> bool:
        return self.popen.poll() is None


@pytest_asyncio.fixture
async def schema(postgres_url: str) -> AsyncIterator[str]:
    name = f"pm_topology_{uuid.uuid4().hex[:12]}"
    yield name
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    await connection.close()


async def test_two_apis_and_two_workers_lose_nothing_when_one_of_each_is_killed(
    tmp_path: Path, postgres_url: str, schema: str
) -> None:
    temporal_port = free_port()
    temporal = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        ui=False,
        port=temporal_port,
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POSTMORTEM_", "TEMPORAL_"))}
    shared = {
        "POSTMORTEM_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "POSTMORTEM_TEMPORAL_TASK_QUEUE": f"topology-{uuid.uuid4().hex}",
        "POSTMORTEM_DATABASE_URL": postgres_url,
        "POSTMORTEM_DATABASE_SCHEMA": schema,
        "POSTMORTEM_DATA_DIR": str(tmp_path),
        "POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS": SECRET,
        "POSTMORTEM_BOOTSTRAP_ADMIN_TOKEN": ADMIN,
        "POSTMORTEM_LOG_LEVEL": "WARNING",
        "POSTMORTEM_PUBLIC_URL": "http://127.0.0.1:8000",
    }
    processes: list[Process] = []

    def start(name: str, overrides: dict[str, str], label: str) -> Process:
        log = tmp_path / f"{label}.log"
        env = {**base, **environment(name, {}, overrides={**shared, **overrides})}
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command(name), env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        process = Process(label, popen, log)
        processes.append(process)
        return process

    store: Store | None = None
    try:
        migrate = start("migrate", {}, "migrate")
        assert await asyncio.to_thread(migrate.popen.wait, 120) == 0, migrate.output()
        api_ports = [free_port(), free_port()]
        metrics_ports = [free_port(), free_port()]
        apis = [
            start("api", {"POSTMORTEM_HOST": "127.0.0.1", "POSTMORTEM_PORT": str(port)}, f"api{n}")
            for n, port in enumerate(api_ports)
        ]
        workers = [
            start("worker", {"POSTMORTEM_WORKER_METRICS_ADDRESS": f"127.0.0.1:{port}"}, f"worker{n}")
            for n, port in enumerate(metrics_ports)
        ]
        for process in [*apis, *workers]:  # what compose sets, not a default: the replicas do not migrate
            assert "POSTMORTEM_MIGRATE_ON_START" in service(process.name.rstrip("01"))["environment"]
        clients = [
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
            )
            for port in api_ports
        ]
        try:

            async def all_ready() -> bool:
                for process in [*apis, *workers]:
                    assert process.alive(), f"{process.name} exited:\n{process.output()}"
                try:
                    health = [(await c.get("/readyz")).status_code for c in clients]
                    async with httpx.AsyncClient() as plain:  # the compose health checks' URLs
                        metrics = [
                            (await plain.get(f"http://127.0.0.1:{p}/metrics")).status_code for p in metrics_ports
                        ]
                except httpx.TransportError:
                    return False
                return health == [200, 200] and metrics == [200, 200]

            await eventually(all_ready, timeout=120, interval=0.25)

            acknowledged: set[str] = set()

            async def deliver(client: httpx.AsyncClient, incident: str) -> int:
                body = resolve_body(incident)
                response = await client.post(PAGERDUTY, content=body, headers=signed(body))
                assert response.status_code in (200, 202), response.text
                if response.status_code == 202:
                    acknowledged.add(incident)
                return response.status_code

            first = [f"PTOPO{n:03d}" for n in range(BEFORE_KILL)]
            # Spread over both APIs, and each delivered again to the other: one report per incident.
            await asyncio.gather(*(deliver(clients[n % 2], incident) for n, incident in enumerate(first)))
            await asyncio.gather(*(deliver(clients[(n + 1) % 2], incident) for n, incident in enumerate(first)))
            assert acknowledged == set(first)

            # Mid-flow: the workers are busy with those and api0 with a burst, when one of each dies with no
            # goodbye. api0 is killed once KILL_AFTER of the burst are answered: it has committed entries its
            # relay may hold leases on, and requests whose answer never comes.
            store = await Store.open(postgres_url, schema=schema, migrate_schema=False)
            drafted_before = len(await report_ids(clients[1]))
            burst = [f"PTOPO{n:03d}" for n in range(BEFORE_KILL, BEFORE_KILL + BURST)]
            enough = asyncio.Event()
            cut_off: list[str] = []

            async def burst_one(incident: str) -> None:
                try:
                    await deliver(clients[0], incident)
                except httpx.TransportError:
                    cut_off.append(incident)
                    return
                if len(acknowledged) >= BEFORE_KILL + KILL_AFTER:
                    enough.set()

            sending = asyncio.gather(*(burst_one(incident) for incident in burst))
            await asyncio.wait_for(enough.wait(), timeout=60)
            killed_at = time.monotonic()
            for victim in (apis[0], workers[0]):
                victim.popen.send_signal(signal.SIGKILL)
                await asyncio.to_thread(victim.popen.wait, 10)
            await sending
            in_flight = await store.inbox.counts()
            pending, _ = await store.inbox.list(InboxState.PENDING, limit=500)
            leased_by_dead = sum(1 for entry in pending if entry.lease_owner is not None)
            # What PagerDuty does with a delivery that got no answer: it sends it again (here, to the API left).
            await asyncio.gather(*(deliver(clients[1], incident) for incident in cut_off))

            second = [f"PTOPO{n:03d}" for n in range(BEFORE_KILL + BURST, BEFORE_KILL + BURST + AFTER_KILL)]
            await asyncio.gather(*(deliver(clients[1], incident) for incident in second))
            expected = {report_id(incident) for incident in acknowledged}
            assert len(expected) == BEFORE_KILL + BURST + AFTER_KILL

            async def all_reports() -> bool:
                for survivor in (apis[1], workers[1]):
                    assert survivor.alive(), f"{survivor.name} exited:\n{survivor.output()}"
                return expected <= set(await report_ids(clients[1]))

            try:
                await eventually(all_reports, timeout=420, interval=1.0)
            except AssertionError:
                found = await report_ids(clients[1])
                raise AssertionError(
                    f"missing {sorted(expected - set(found))[:10]}; api1:\n{apis[1].output()}\n"
                    f"worker1:\n{workers[1].output()}"
                ) from None
            recovered = time.monotonic() - killed_at
            found = await report_ids(clients[1])
            assert {pid: n for pid, n in found.items() if n != 1} == {}
            assert set(found) == expected

            async def inbox_settled() -> bool:
                assert store is not None
                counts = await store.inbox.counts()
                assert counts.get(InboxState.FAILED, 0) == 0, counts
                return counts.get(InboxState.PENDING, 0) == 0

            await eventually(inbox_settled, timeout=60, interval=0.5)
            print(
                f"topology: {drafted_before} of {BEFORE_KILL} reports drafted before the kills; "
                f"{len(cut_off)} of the burst cut off; inbox after them {dict(in_flight)}, {leased_by_dead} leased; "
                f"{len(expected)} reports, all there {recovered:.1f} s after the kills"
            )
        finally:
            for client in clients:
                await client.aclose()
    finally:
        for process in processes:
            if process.alive():
                process.popen.send_signal(signal.SIGKILL)
                await asyncio.to_thread(process.popen.wait, 10)
        if store is not None:
            await store.close()
        await temporal.shutdown()
