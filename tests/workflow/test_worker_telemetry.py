"""The worker's Prometheus endpoint has the SDK's metrics and ours; its activity log lines carry the report's ids.

A client on the real dev server with the runtime `postmortem worker` builds from
POSTMORTEM_WORKER_METRICS_ADDRESS, a worker with our interceptor, and the real problem activities
over a SQLite store: a workflow records a problem (for a report that is gone: kept nowhere, still
counted) and sets the state of a problem that does not exist (a NotFound failure).
"""

from __future__ import annotations

import io
import json
import logging
import socket
import uuid
from datetime import timedelta

import httpx
import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from postmortem.activities.problems import ProblemActivities, ProblemStateInput, RecordProblemInput
from postmortem.app.logs import log_handler
from postmortem.app.temporal import connect
from postmortem.app.worker_telemetry import ActivityTelemetry, WorkerMetricsError, worker_runtime
from postmortem.review.problems import ProblemState
from postmortem.store.store import Store
from tests.support import eventually, free_port

POSTMORTEM_ID = "pagerduty-PTELEMETRY"


@workflow.defn(sandboxed=False)
class ProblemProbe:
    @workflow.run
    async def run(self) -> None:
        now = workflow.now()
        await workflow.execute_activity(
            "record_problem",
            RecordProblemInput(
                postmortem_id=POSTMORTEM_ID,
                workflow_id=workflow.info().workflow_id,
                problem_id="p1",
                attempt=1,
                step="send_invite",
                target="smtp",
                message="550 mailbox unavailable",
                now=now,
            ),
            start_to_close_timeout=timedelta(seconds=30),
        )
        await workflow.execute_activity(
            "set_problem_state",
            ProblemStateInput(postmortem_id=POSTMORTEM_ID, problem_id="p1", state=ProblemState.RESOLVED, now=now),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


def samples(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]


async def test_worker_metrics_and_activity_log_context(dev_env: WorkflowEnvironment, sqlite_store: Store) -> None:
    address = f"127.0.0.1:{free_port()}"
    runtime = worker_runtime(address)
    assert runtime is not None and worker_runtime(None) is None
    client = await connect(dev_env.client.service_client.config.target_host, runtime=runtime)
    problems = ProblemActivities(sqlite_store)
    queue = f"telemetry-{uuid.uuid4().hex}"
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[ProblemProbe],
            activities=[problems.record_problem, problems.set_problem_state],
            interceptors=[ActivityTelemetry()],
        ):
            with pytest.raises(WorkflowFailureError):
                await client.execute_workflow(
                    ProblemProbe.run, id=f"postmortem-{POSTMORTEM_ID}-{uuid.uuid4().hex[:6]}", task_queue=queue
                )
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

    async def scraped() -> str | None:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://{address}/metrics")).text
        return text if samples(text, "postmortem_problems_recorded") else None

    text = await eventually(scraped, timeout=30, interval=0.5)
    [failure] = samples(text, "postmortem_activity_failures")
    assert 'kind="NotFound"' in failure and 'activity_type="set_problem_state"' in failure and failure.endswith(" 1")
    [problem] = samples(text, "postmortem_problems_recorded")
    assert 'step="send_invite"' in problem and problem.endswith(" 1")
    assert samples(text, "temporal_activity_execution_failed"), "the SDK's own metrics are served too"

    # The activity's own log line ("post-mortem … is gone") carries the report's ids as fields.
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [gone] = [line for line in lines if "is gone" in line["message"]]
    assert gone["postmortem_id"] == POSTMORTEM_ID and gone["workflow_id"].startswith(f"postmortem-{POSTMORTEM_ID}")


def test_a_taken_metrics_address_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(WorkerMetricsError, match=f"POSTMORTEM_WORKER_METRICS_ADDRESS=127.0.0.1:{port}"):
            worker_runtime(f"127.0.0.1:{port}")
