"""Temporal down: the webhooks still answer 202 at once, and every delivery becomes one report after.

The embedded Temporal dev server of `postmortem dev` is SIGKILLed. Its port is then held (every
connection dropped, as from a dead server) until the deliveries are answered and the supervisor has
failed at least one restart, so the outage is real for all of them and the retry path is taken.
Then the port is freed, the supervisor brings Temporal back on the same data file and ports, and
the inbox's relay drains. The
worker's own supervision is proven apart, on a failure the SDK does not ride out by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import workflow
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.worker import Worker

from postmortem.app.devserver import DevServer
from postmortem.app.runtime import SupervisedWorker
from postmortem.app.temporal import connect
from tests.dev_service import wait_ready
from tests.reliability.service import (
    PAGERDUTY,
    DevService,
    port_held,
    report_id,
    resolve_body,
    signed,
    wait_for_reports,
)
from tests.support import eventually, free_port

pytestmark = [pytest.mark.reliability, pytest.mark.slow]  # the slower tier: `scripts/test.sh -m slow`

DELIVERIES = 50
SENDERS = 10
PAGERDUTY_PATIENCE = 5.0  # seconds PagerDuty waits for an answer before it counts a failure


@pytest.mark.e2e
async def test_temporal_killed_every_delivery_is_acknowledged_and_becomes_one_report(service: DevService) -> None:
    async with service.client() as http:
        await wait_ready(http, service)
        killed = service.temporal_pid()
        os.kill(killed, signal.SIGKILL)
        async with port_held(service.temporal_port):

            async def temporal_unreachable() -> bool:
                answer = await http.get("/readyz")
                return answer.status_code == 503 and answer.json()["checks"]["temporal"].startswith("unreachable")

            await eventually(temporal_unreachable, timeout=15, interval=0.1)

            incidents = [f"POUT{n:03d}" for n in range(DELIVERIES)]
            gate = asyncio.Semaphore(SENDERS)

            async def deliver(incident_id: str) -> tuple[int, float, str]:
                body = resolve_body(incident_id)
                async with gate:
                    started = time.monotonic()
                    answer = await http.post(PAGERDUTY, content=body, headers=signed(body, f"W-{incident_id}"))
                    return answer.status_code, time.monotonic() - started, answer.text

            answers = await asyncio.gather(*(deliver(incident_id) for incident_id in incidents))
            slow = [
                (i, seconds)
                for i, (_, seconds, _) in zip(incidents, answers, strict=True)
                if seconds >= PAGERDUTY_PATIENCE
            ]
            refused = [
                (i, code, text[:200]) for i, (code, _, text) in zip(incidents, answers, strict=True) if code != 202
            ]
            assert not refused, f"{len(refused)} deliveries not acknowledged while Temporal was down: {refused[:3]}"
            assert not slow, f"{len(slow)} answers took {PAGERDUTY_PATIENCE:g} s or more: {slow[:5]}"
            outcomes = {p["outcome"] for _, _, text in answers for p in json.loads(text)["postmortems"]}
            assert outcomes == {"queued"}, outcomes
            # Still down after the last answer: every one of them was acknowledged during the outage.
            assert await temporal_unreachable(), "Temporal came back before the deliveries were done"

            async def restart_failed() -> bool:
                return "the Temporal dev server did not come back" in service.output()

            await eventually(restart_failed, timeout=15, interval=0.1)

        found = await wait_for_reports(http, service, {report_id(i) for i in incidents}, timeout=150)
        assert found == {report_id(i): 1 for i in incidents}, "reports missing, extra or listed twice"
        assert service.process is not None and service.process.poll() is None, "postmortem dev ended"
        assert service.temporal_pid() != killed

    log = service.output()
    database = str(service.data_dir / "temporal.db")
    assert f"the Temporal dev server exited (code -9, killed by SIGKILL); restarting it on {database}" in log
    assert "the Temporal dev server is back on" in log
    assert service.stop() == 0


@workflow.defn(sandboxed=False)
class Echo:
    """The smallest workflow that proves a worker is polling again."""

    @workflow.run
    async def run(self, text: str) -> str:
        return text


async def test_a_worker_that_fails_is_rebuilt_once_temporal_can_serve_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fatal worker error (here: its namespace does not exist yet) must not end the worker for good.

    The SDK retries polls while the server is away, but a failed start-up validation ends
    `Worker.run()`; `serve` would then have lost the only thing that runs workflows.
    """
    dev = DevServer(tmp_path, port=free_port(), ui_port=free_port())
    await dev.start()
    try:
        namespace = f"later-{uuid.uuid4().hex[:8]}"
        client = await connect(dev.address, namespace)
        supervised = SupervisedWorker(
            client,
            lambda c: Worker(c, task_queue="echo", workflows=[Echo]),
            reconnect=lambda: connect(dev.address, namespace),
        )
        with caplog.at_level(logging.WARNING, logger="postmortem"):
            running = asyncio.create_task(supervised.run())
            try:

                async def failed_once() -> bool:
                    assert not running.done(), running
                    return "the Temporal worker stopped" in caplog.text

                await eventually(failed_once, timeout=20)
                admin: Client = await connect(dev.address)
                await admin.workflow_service.register_namespace(
                    RegisterNamespaceRequest(
                        namespace=namespace,
                        workflow_execution_retention_period=Duration(seconds=int(timedelta(days=1).total_seconds())),
                    )
                )

                async def echoed() -> str | None:
                    assert not running.done(), running
                    try:
                        return await client.execute_workflow(
                            Echo.run,
                            "back",
                            id=f"echo-{uuid.uuid4().hex}",
                            task_queue="echo",
                            execution_timeout=timedelta(seconds=5),
                        )
                    except Exception:  # the namespace is not served yet, or no worker polled in time
                        return None

                assert await eventually(echoed, timeout=90, interval=0.5) == "back"
                assert supervised.restarts >= 1
            finally:
                await supervised.shutdown()
                await asyncio.wait_for(running, timeout=30)
    finally:
        await dev.stop()
