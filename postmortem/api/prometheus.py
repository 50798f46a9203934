"""GET /metrics: the API process's Prometheus metrics (prometheus_client's text format).

- `postmortem_webhooks_received_total{source, outcome}`: webhook requests answered 2xx, by what the
  answer said (`accepted`, `ignored`, `stored`, `synced`, `unchanged`);
- `postmortem_webhook_rejections_total{source, reason}`: refused ones, by why (`unauthorized`,
  `malformed`, `too_large`, `invalid_payload`, `unavailable`);
- `postmortem_inbox_backlog`, `postmortem_inbox_oldest_age_seconds` and `postmortem_inbox_entries{state}`:
  read from the store at each scrape, so every replica reports the one shared inbox (take `max`, not
  `sum`, across replicas);
- `postmortem_http_request_duration_seconds{method, route, status}`: by the route's template
  (`/api/postmortems/{postmortem_id}`), never the raw path, so ids do not explode the series;
- the process's own (CPU, memory, open files), from prometheus_client.

No token is asked for: Prometheus scrapers rarely carry one, and nothing here names a report, a
person or an incident — counts and durations only. Keep the port off the internet (or filter
/metrics at the proxy) as for any Prometheus target.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import ParamSpec

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postmortem.api.deps import ServicesDep
from postmortem.store.inbox import InboxState
from postmortem.webhooks.errors import WebhookRejected

router = APIRouter(tags=["health"])

WEBHOOKS_RECEIVED = Counter(
    "postmortem_webhooks_received", "Webhook requests answered 2xx, by source and outcome", ["source", "outcome"]
)
WEBHOOK_REJECTIONS = Counter(
    "postmortem_webhook_rejections", "Webhook requests refused, by source and reason", ["source", "reason"]
)
INBOX_BACKLOG = Gauge("postmortem_inbox_backlog", "Deliveries waiting in the inbox to be handed to Temporal")
INBOX_OLDEST = Gauge(
    "postmortem_inbox_oldest_age_seconds", "Age of the oldest delivery waiting in the inbox (0 when none waits)"
)
INBOX_ENTRIES = Gauge("postmortem_inbox_entries", "Inbox entries by state", ["state"])
HTTP_DURATION = Histogram(
    "postmortem_http_request_duration_seconds",
    "HTTP request latency, by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

REASONS = {400: "malformed", 401: "unauthorized", 403: "forbidden", 413: "too_large", 422: "invalid_payload"}
P = ParamSpec("P")


def rejection_reason(status: int) -> str:
    return REASONS.get(status, "unavailable" if status == 503 else str(status))


def counted(source: str) -> Callable[[Callable[P, Awaitable[Response]]], Callable[P, Awaitable[Response]]]:
    """Count each answer of a webhook route: its outcome (the answer's `status`), or why it was refused."""

    def decorate(route: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
        @functools.wraps(route)
        async def observed(*args: P.args, **kwargs: P.kwargs) -> Response:
            try:
                response = await route(*args, **kwargs)
            except WebhookRejected as exc:
                WEBHOOK_REJECTIONS.labels(source, rejection_reason(exc.status_code)).inc()
                raise
            WEBHOOKS_RECEIVED.labels(source, _outcome(response)).inc()
            return response

        return observed

    return decorate


def _outcome(response: Response) -> str:
    try:
        status = json.loads(bytes(response.body)).get("status")
    except (ValueError, AttributeError):
        status = None
    return status if isinstance(status, str) else "accepted"


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text format; the inbox gauges are read from the store now (left as they were if it is away)."""
    try:
        backlog, oldest = await services.store.inbox.backlog(datetime.now(UTC))
        counts = await services.store.inbox.counts()
    except Exception:  # /readyz says why; a scrape still gets the counters
        pass
    else:
        INBOX_BACKLOG.set(backlog)
        INBOX_OLDEST.set(oldest)
        for state in InboxState:
            INBOX_ENTRIES.labels(state.value).set(counts.get(state, 0))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class RequestTimer:
    """ASGI middleware: the latency of every HTTP request, labelled by the route template it matched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            HTTP_DURATION.labels(scope["method"], _template(scope), str(status)).observe(time.perf_counter() - started)


def _template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
