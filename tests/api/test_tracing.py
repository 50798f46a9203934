"""One trace from the webhook through the workflow's activities, with tracing on (an in-memory exporter).

The app, the inbox relay and the worker run in-process over the real dev server and a SQLite store,
each given the same `Tracing` the service builds from `OTEL_*` (here its spans go to memory): the
webhook's request span, the relay's start of the workflow (minutes later it could be, in another
process: the context travels in the inbox entry), the workflow's run and its activities must share
one trace id.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.app.temporal import connect
from postmortem.app.tracing import Tracing, tracing_wanted
from postmortem.app.worker import build_worker
from postmortem.config import PagerDutySettings, StoreSettings, TemporalSettings
from postmortem.incident.teams import TeamsConfig
from postmortem.models import Status
from postmortem.store.postmortems import NotFound
from postmortem.store.store import Store
from tests.api.conftest import relaying
from tests.api.test_webhooks import signed
from tests.factories import pagerduty_resolved_body
from tests.support import eventually

SECRET = "pd-secret-for-tracing"


async def test_one_trace_from_the_webhook_to_the_activities(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    exported = InMemorySpanExporter()
    tracing = Tracing.with_processor(SimpleSpanProcessor(exported))
    settings = Settings(
        store=StoreSettings(data_dir=tmp_path),
        pagerduty=PagerDutySettings(webhook_secrets=[SECRET]),
        temporal=TemporalSettings(task_queue=f"tracing-{uuid.uuid4().hex}"),
    )
    address = dev_env.client.service_client.config.target_host
    gateway = TemporalGateway(
        address, "default", settings.temporal.task_queue, interceptors=tracing.temporal_interceptors()
    )
    app = create_app(Services(settings=settings, store=sqlite_store, temporal=gateway, teams=TeamsConfig()))
    tracing.instrument(app)
    worker_client = await connect(address, interceptors=tracing.temporal_interceptors())
    worker = build_worker(
        worker_client,
        task_queue=settings.temporal.task_queue,
        store=sqlite_store,
        teams=TeamsConfig(),
        settings=settings,
    )
    async with worker, relaying(sqlite_store, gateway, settings):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            body = pagerduty_resolved_body("PTRACE1")
            answer = await http.post("/webhooks/pagerduty", content=body, headers=signed(body, SECRET))
            assert answer.status_code == 202, answer.text
            await draft_of_store(sqlite_store, "pagerduty-PTRACE1")

            def names_in_trace() -> set[str]:
                spans = exported.get_finished_spans()
                [request] = [span for span in spans if span.name == "POST /webhooks/pagerduty"]
                assert request.context is not None
                return {
                    span.name
                    for span in spans
                    if span.context is not None and span.context.trace_id == request.context.trace_id
                }

            async def whole() -> set[str] | None:
                names = names_in_trace()
                return names if "RunActivity:draft_postmortem" in names else None

            names = await eventually(whole, timeout=30)
    assert {
        "POST /webhooks/pagerduty",
        "StartWorkflow:PostmortemWorkflow",
        "RunWorkflow:PostmortemWorkflow",
        "StartActivity:resolve_team",
        "RunActivity:resolve_team",
        "RunActivity:draft_postmortem",
    } <= names, names
    tracing.shutdown()


async def draft_of_store(store: Store, postmortem_id: str) -> None:
    async def drafted() -> bool:
        try:
            return (await store.postmortems.get(postmortem_id)).status == Status.DRAFT
        except NotFound:
            return False

    await eventually(drafted, timeout=30)


def test_tracing_is_switched_on_by_the_standard_variables() -> None:
    assert not tracing_wanted({})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert tracing_wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing_wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not tracing_wanted({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not Tracing.from_environment({}).on and Tracing().temporal_interceptors() == []
