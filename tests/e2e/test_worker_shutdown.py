"""SIGTERM to `postmortem worker` in the middle of an activity: it stops polling and lets the activity
finish (POSTMORTEM_WORKER_SHUTDOWN_SECONDS), so a rolling deploy loses no attempt; with the setting at
0 the same signal cancels the activity at once (the contrast that shows the setting is what drains)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from postmortem.evidence.models import EvidenceSource
from postmortem.store.store import Store
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.fakes.pagerduty import FakePagerDuty, pagerduty_app
from tests.fakes.serve import serve_app
from tests.support import binary, eventually, free_port

pytestmark = pytest.mark.e2e
ENTRIES = 3_000  # 30 pages of 100 at 0.1 s each: the gather is still running seconds after the signal


async def gather_outcome(client: Client, workflow_id: str) -> tuple[int, int]:
    """(completions, failures or cancellations) of the workflow's `gather_pagerduty` activity."""
    scheduled: set[int] = set()
    completed = ended_otherwise = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "gather_pagerduty":
                scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed += event.activity_task_completed_event_attributes.scheduled_event_id in scheduled
        elif event.event_type in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
        ):
            ended_otherwise += 1
    return completed, ended_otherwise


@pytest.mark.parametrize("shutdown_seconds", [30, 0])
async def test_sigterm_lets_the_running_activity_finish(tmp_path: Path, shutdown_seconds: int) -> None:
    fake = FakePagerDuty()
    incident = f"PTERM{shutdown_seconds}"
    fake.add_incident(incident, log_entries=ENTRIES, start=datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    fake.delay_seconds = 0.1
    port = free_port()
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=binary("temporal"), ui=False, port=port
    )
    database = tmp_path / "store.db"
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    log = tmp_path / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        async with serve_app(pagerduty_app(fake)) as pd_url:
            task_queue = f"term-{uuid.uuid4().hex}"
            worker_env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("POSTMORTEM_", "TEMPORAL_"))},
                "POSTMORTEM_TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
                "POSTMORTEM_TEMPORAL_TASK_QUEUE": task_queue,
                "POSTMORTEM_DATA_DIR": str(tmp_path),
                "POSTMORTEM_DATABASE_URL": f"sqlite:///{database}",
                "POSTMORTEM_PAGERDUTY_API_URL": pd_url,
                "POSTMORTEM_PAGERDUTY_API_TOKEN": fake.token,
                "POSTMORTEM_GATHER_HEARTBEAT_SECONDS": "2",
                "POSTMORTEM_WORKER_SHUTDOWN_SECONDS": str(shutdown_seconds),
                "POSTMORTEM_LOG_LEVEL": "WARNING",
            }
            with log.open("ab") as out:
                worker = subprocess.Popen(
                    [str(Path(sys.executable).parent / "postmortem"), "worker"],
                    env=worker_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            pm_id = postmortem_id_for("pagerduty", incident)
            workflow_id = workflow_id_for(pm_id)
            await env.client.start_workflow(
                PostmortemWorkflow.run,
                PostmortemWorkflowInput(postmortem_id=pm_id, event=pagerduty_event(incident)),
                id=workflow_id,
                task_queue=task_queue,
            )

            def pages() -> int:
                return sum(1 for r in fake.requests if r.path.endswith("/log_entries"))

            async def in_flight() -> bool:
                assert worker is not None and worker.poll() is None, log.read_text()
                return pages() >= 5

            await eventually(in_flight, timeout=60)
            signalled = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            # Waited for off the event loop: the fake PagerDuty answering the draining worker runs on it.
            code = await asyncio.to_thread(worker.wait, shutdown_seconds + 20)
            took = time.monotonic() - signalled
            assert code == 0, log.read_text()[-3000:]
            completed, ended_otherwise = await gather_outcome(env.client, workflow_id)
            stored = await store.evidence.count(pm_id, sources=[EvidenceSource.PAGERDUTY])
            if shutdown_seconds:
                # Drained: the one attempt ran to its end on the stopping worker, every page once.
                assert (completed, ended_otherwise) == (1, 0), log.read_text()[-3000:]
                assert stored == ENTRIES
                assert pages() == ENTRIES // 100
                assert took >= 1.0  # it waited for the remaining pages rather than leaving at once
            else:
                # Cancelled at once: the attempt did not finish; the rest of the pages were never asked for.
                assert completed == 0
                assert stored < ENTRIES
                assert pages() < ENTRIES // 100
            print(f"shutdown_seconds={shutdown_seconds}: exited {took:.2f} s after SIGTERM, {pages()} pages")
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        await store.close()
        await env.shutdown()
