"""`postmortem dev` with POSTMORTEM_LOG_FORMAT=json and POSTMORTEM_WORKER_METRICS_ADDRESS, as an operator runs it.

A signed webhook becomes a draft; then the API's /metrics counted it, the worker process serves the
Temporal SDK's metrics at its address, and the service's output has JSON lines for that report —
the webhook's and the relay's — with its ids as fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dev_service import DevService, running, wait_ready
from tests.e2e.test_dev_service import ADMIN, SECRET, draft, signed
from tests.factories import pagerduty_resolved_body
from tests.support import eventually, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DevService]:
    settings = {
        "POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS": SECRET,
        "POSTMORTEM_LOG_FORMAT": "json",
        "POSTMORTEM_WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    with running(DevService(tmp_path, settings, admin_token=ADMIN)) as started:
        yield started


def json_lines(output: str) -> list[dict[str, Any]]:
    found = []
    for line in output.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))  # a line that starts like JSON must be JSON
    return found


async def test_json_logs_and_both_metrics_endpoints(service: DevService) -> None:
    async with service.client() as http:
        await wait_ready(http, service)
        body = pagerduty_resolved_body("POBSERVE1")
        assert (await http.post("/webhooks/pagerduty", content=body, headers=signed(body))).status_code == 202
        await draft(http, "pagerduty-POBSERVE1")
        scraped = (await http.get("/metrics")).text
        assert 'postmortem_webhooks_received_total{outcome="accepted",source="pagerduty"} 1.0' in scraped

        worker_address = service.env["POSTMORTEM_WORKER_METRICS_ADDRESS"]

        async def worker_metrics() -> str | None:
            try:
                async with httpx.AsyncClient() as plain:
                    text = (await plain.get(f"http://{worker_address}/metrics")).text
            except httpx.TransportError:
                return None
            return text if "temporal_activity_execution_latency" in text else None

        assert await eventually(worker_metrics, timeout=30, interval=0.5)

    lines = json_lines(service.output())
    about = [line for line in lines if line.get("postmortem_id") == "pagerduty-POBSERVE1"]
    loggers = {line["logger"] for line in about}
    assert {"postmortem.webhooks", "postmortem.relay"} <= loggers, about
    for line in about:
        assert line["incident_id"] == "POBSERVE1" and line["workflow_id"] == "postmortem-pagerduty-POBSERVE1"
    # uvicorn's own lines come through the same handler: JSON too.
    assert any(line["logger"].startswith("uvicorn") for line in lines)
