"""OpenTelemetry tracing, switched on by the standard `OTEL_*` variables: one trace per report's journey.

A webhook's request span (FastAPI instrumentation) → its W3C trace context, kept in the inbox entry
with the delivery → the relay, minutes later and maybe in another process, starts the workflow
inside that context (the SDK's TracingInterceptor on the client makes `StartWorkflow` its child and
passes it on in the workflow's headers) → the workflow's and each activity's spans in the worker.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), unless `OTEL_SDK_DISABLED=true`;
the exporter reads its own variables (endpoint, headers, protocol over HTTP), the resource
`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`. Off, nothing is instrumented and nothing is kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor

SERVICE_NAME = "postmortem-autopilot"
# Probes and scrapes every few seconds would bury the traces that matter.
EXCLUDED_URLS = "healthz,readyz,metrics"
TRACE_KEY = "trace"  # where an inbox entry's delivery keeps the webhook's trace context


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _exporter(environ: Mapping[str, str]) -> SpanExporter:
    name = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name}: only otlp (over HTTP), console or none are supported")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


@dataclass(frozen=True)
class Tracing:
    """The process's tracer provider, or none (tracing off): what each part asks to be traced with."""

    provider: TracerProvider | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Tracing:
        """From `OTEL_*`; also made the global provider, so libraries' own spans join the same traces."""
        env = os.environ if environ is None else environ
        if not tracing_wanted(env):
            return cls()
        tracing = cls.with_processor(BatchSpanProcessor(_exporter(env)))
        assert tracing.provider is not None
        trace.set_tracer_provider(tracing.provider)
        return tracing

    @classmethod
    def with_processor(cls, processor: SpanProcessor) -> Tracing:
        """A provider whose spans go to `processor` (a test hands an in-memory exporter's)."""
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        provider.add_span_processor(processor)
        return cls(provider)

    @property
    def on(self) -> bool:
        return self.provider is not None

    def temporal_interceptors(self) -> list[TracingInterceptor]:
        """For `Client.connect`: spans for starts and signals, and (on a worker's client) workflows and activities."""
        if self.provider is None:
            return []
        return [TracingInterceptor(self.provider.get_tracer("postmortem.temporal"))]

    def instrument(self, app: FastAPI) -> None:
        if self.provider is not None:
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            FastAPIInstrumentor.instrument_app(app, tracer_provider=self.provider, excluded_urls=EXCLUDED_URLS)

    def shutdown(self) -> None:
        """Flush what is still buffered (a batch not yet exported) before the process ends."""
        if self.provider is not None:
            self.provider.shutdown()


def current_trace() -> dict[str, str]:
    """The active trace context as W3C headers (`traceparent`, …); empty when nothing is traced."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued(carrier: Any) -> Iterator[None]:
    """Run the block inside the trace context a webhook stored (nothing changes when there is none)."""
    if not isinstance(carrier, dict) or not carrier:
        yield
        return
    token = context.attach(propagate.extract({str(key): str(value) for key, value in carrier.items()}))
    try:
        yield
    finally:
        context.detach(token)
