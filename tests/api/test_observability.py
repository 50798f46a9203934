"""GET /metrics moves with the webhooks, and a webhook's JSON log line carries the report's ids.

The app runs in-process over a real SQLite store; Temporal is a gateway pointed at a port nobody
listens on and no relay runs, so an accepted delivery stays in the inbox and the backlog gauges
(read from the store at the scrape) must show it.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.logs import log_handler
from postmortem.app.settings import Settings
from postmortem.config import PagerDutySettings, StoreSettings
from postmortem.incident.teams import TeamsConfig
from postmortem.store.store import Store
from tests.api.test_webhooks import signed
from tests.factories import pagerduty_resolved_body
from tests.support import free_port

SECRET = "pd-secret-for-observability"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture
async def http(sqlite_store: Store, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(store=StoreSettings(data_dir=tmp_path), pagerduty=PagerDutySettings(webhook_secrets=[SECRET]))
    gateway = TemporalGateway(f"127.0.0.1:{free_port()}", "default", "unused")
    app = create_app(Services(settings=settings, store=sqlite_store, temporal=gateway, teams=TeamsConfig()))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_counters_and_gauges_move_with_a_webhook(http: httpx.AsyncClient) -> None:
    before = await scrape(http)
    assert value(before, "postmortem_inbox_backlog") == 0
    body = pagerduty_resolved_body("PMETRICS1")
    accepted = await http.post("/webhooks/pagerduty", content=body, headers=signed(body, SECRET))
    assert accepted.status_code == 202, accepted.text
    refused = await http.post("/webhooks/pagerduty", content=body, headers=signed(body, "a-wrong-secret"))
    assert refused.status_code == 401
    ignored = json.loads(body)
    ignored["event"]["event_type"] = "incident.triggered"
    ignored_body = json.dumps(ignored).encode()
    assert (await http.post("/webhooks/pagerduty", content=ignored_body, headers=signed(ignored_body, SECRET))).json()[
        "status"
    ] == "ignored"
    after = await scrape(http)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("postmortem_webhooks_received_total", source="pagerduty", outcome="accepted") == 1
    assert moved("postmortem_webhooks_received_total", source="pagerduty", outcome="ignored") == 1
    assert moved("postmortem_webhook_rejections_total", source="pagerduty", reason="unauthorized") == 1
    assert value(after, "postmortem_inbox_backlog") == 1
    assert value(after, "postmortem_inbox_oldest_age_seconds") > 0
    assert value(after, "postmortem_inbox_entries", state="pending") == 1
    timed = "postmortem_http_request_duration_seconds_count"
    assert moved(timed, method="POST", route="/webhooks/pagerduty", status="202") == 2
    assert moved(timed, method="POST", route="/webhooks/pagerduty", status="401") == 1
    assert moved(timed, method="GET", route="/metrics", status="200") == 1  # the first scrape
    # A route's template, never its raw path: ids do not become series.
    await http.get("/api/postmortems/pagerduty-PMETRICS1")
    templated = await scrape(http)
    assert value(templated, timed, method="GET", route="/api/postmortems/{postmortem_id}", status="401") >= 1
    assert not any("PMETRICS1" in dict(labels).get("route", "") for _, labels in templated)


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes in POSTMORTEM_LOG_FORMAT=json while the test runs."""
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_webhook_log_line_carries_the_report_ids_as_json_fields(
    http: httpx.AsyncClient, json_lines: io.StringIO
) -> None:
    body = pagerduty_resolved_body("PLOGS1")
    assert (await http.post("/webhooks/pagerduty", content=body, headers=signed(body, SECRET))).status_code == 202
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    [line] = [line for line in lines if line["logger"] == "postmortem.webhooks"]
    assert line["postmortem_id"] == "pagerduty-PLOGS1"
    assert line["incident_id"] == "PLOGS1"
    assert line["workflow_id"] == "postmortem-pagerduty-PLOGS1"
    assert line["level"] == "INFO" and "PLOGS1" in line["message"] and line["time"].endswith("+00:00")
    # The ids belong to that request only: a line logged after it carries none.
    logging.getLogger("postmortem.test").info("after the request")
    last = json.loads(json_lines.getvalue().splitlines()[-1])
    assert last["message"] == "after the request" and "postmortem_id" not in last
