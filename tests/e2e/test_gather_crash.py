"""A worker killed in the middle of gathering 10,000 log entries: a new worker finishes the same
gather from its last heartbeat, and the store ends with each entry exactly once."""

from __future__ import annotations

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

from postmortem.evidence.models import EvidenceSource
from postmortem.models import Status
from postmortem.store.postmortems import NotFound
from postmortem.store.store import Store
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.fakes.pagerduty import FakePagerDuty, pagerduty_app
from tests.fakes.serve import serve_app
from tests.support import binary, eventually, free_port

pytestmark = pytest.mark.e2e
ENTRIES = 10_000


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "postmortem"), "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


async def test_a_killed_worker_is_replaced_and_the_gather_resumes(tmp_path: Path) -> None:
    fake = FakePagerDuty()
    fake.add_incident("PKILL", log_entries=ENTRIES, start=datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    fake.delay_seconds = 0.03  # a gather of ~100 pages takes seconds: time to kill the worker midway
    port = free_port()
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=binary("temporal"), ui=False, port=port
    )
    database = tmp_path / "store.db"
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with serve_app(pagerduty_app(fake)) as pd_url:
            worker_env = {
                **os.environ,
                "POSTMORTEM_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
                "POSTMORTEM_TEMPORAL_TASK_QUEUE": f"crash-{uuid.uuid4().hex}",
                "POSTMORTEM_DATA_DIR": str(tmp_path),
                "POSTMORTEM_DATABASE_URL": f"sqlite:///{database}",
                "POSTMORTEM_PAGERDUTY_API_URL": pd_url,
                "POSTMORTEM_PAGERDUTY_API_TOKEN": fake.token,
                "POSTMORTEM_GATHER_HEARTBEAT_SECONDS": "2",
                "POSTMORTEM_GATHER_DEADLINE_SECONDS": "600",
                "POSTMORTEM_LOG_LEVEL": "WARNING",
            }
            workers.append(start_worker(worker_env, log))
            pm_id = postmortem_id_for("pagerduty", "PKILL")
            await env.client.start_workflow(
                PostmortemWorkflow.run,
                PostmortemWorkflowInput(postmortem_id=pm_id, event=pagerduty_event("PKILL")),
                id=workflow_id_for(pm_id),
                task_queue=worker_env["POSTMORTEM_TEMPORAL_TASK_QUEUE"],
            )

            def offsets() -> list[int]:
                return [int(r.params["offset"]) for r in fake.requests if r.path.endswith("/log_entries")]

            async def midway() -> bool:
                assert workers[0].poll() is None, log.read_text()
                return any(offset >= 3_000 for offset in offsets())

            await eventually(midway, timeout=60)
            workers[0].send_signal(signal.SIGKILL)  # no goodbye: a crash, not a shutdown
            workers[0].wait(timeout=10)
            served_before_kill = len(offsets())
            stored_before_restart = await store.evidence.count(pm_id, sources=[EvidenceSource.PAGERDUTY])
            assert 0 < stored_before_restart < ENTRIES

            workers.append(start_worker(worker_env, log))

            async def drafted() -> bool:
                try:
                    return (await store.postmortems.get(pm_id)).status == Status.DRAFT
                except NotFound:
                    return False

            await eventually(drafted, timeout=90, interval=0.2)
            stored = await store.evidence.entries(pm_id, sources=[EvidenceSource.PAGERDUTY])
            assert len(stored) == ENTRIES and len({entry.key for entry in stored}) == ENTRIES
            after_restart = offsets()[served_before_kill:]
            assert after_restart and after_restart[0] > 0  # resumed from its heartbeat, not from the start
            assert offsets().count(0) == 1
            pm = await store.postmortems.get(pm_id)
            assert 5 <= len(next(s for s in pm.sections if s.key == "timeline").body.splitlines()) <= 15
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
        await store.close()
        await env.shutdown()
