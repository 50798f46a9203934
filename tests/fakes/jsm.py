"""A loopback Jira Service Management Operations REST API (an alert, its logs and notes), in JSM's formats.

From Atlassian's OpenAPI document (tests/fixtures/jsm_ops_*.source.txt): paths
`/jsm/ops/api/{cloudId}/v1/alerts/{id}[/logs|/notes]`, basic auth with an account email and API token,
`{"values": [...], "links": {"next": "/v1/alerts/{id}/logs?after=<key>&size=<n>"}}` pages whose
`after` is the key of the last record of the previous page, `size` 1-100 (default 20); 401
`{"code", "message"}`, 403/404 `{"errors": [{"title", "code"}]}`.

Outages (`Switchable`, tests/fakes/serve.py), until `heal()`: `fail_with(401)`, `fail_with(403)`,
`fail_with(404)`, `fail_with(429)`, `fail_with(500)`, as `fail_next` answers them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app, reset_fake
from tests.fixtures import fixture_json

MAX_SIZE = 100
DEFAULT_SIZE = 20

_ALERT = fixture_json("jsm_ops_get_alert_response.json")
_LOG = fixture_json("jsm_ops_list_alert_logs_response.json")["values"][0]
_NOTE = fixture_json("jsm_ops_list_alert_notes_response.json")["values"][0]

# The shapes are the spec's (UnauthorizedErrorResponse, ErrorResponses); these words are not confirmed from a source.
UNAUTHORIZED = {"code": 401, "message": "Client must be authenticated to access this resource."}
FORBIDDEN = {"errors": [{"title": "You are not allowed to view this alert.", "code": "FORBIDDEN"}]}
NOT_FOUND = {"errors": [{"title": "Alert not found.", "code": "NOT_FOUND"}]}


@dataclass
class FakeJsmAlert:
    alert: dict[str, Any]
    logs: list[dict[str, Any]] = field(default_factory=list)  # oldest first, each with its paging key
    notes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeJsm(Switchable):
    cloud_id: str = "a436116f-02ce-4520-8fbb-7301462a1674"
    email: str = "ops-bot@example.com"
    api_token: str = "jsm-fake-api-token"
    alerts: dict[str, FakeJsmAlert] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    retry_after: str | None = "1"
    max_size: int = MAX_SIZE  # a lower cap makes pages shorter than asked (links.next still says "more")
    delay_seconds: float = 0.0
    epoch: int = 0
    outage: Outage | None = None
    refused: int = 0

    def reset(self) -> None:
        reset_fake(self)

    @property
    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode("ascii")

    def add_alert(
        self,
        alert_id: str,
        *,
        logs: int = 0,
        notes: int = 0,
        start: datetime = datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
    ) -> FakeJsmAlert:
        alert = FakeJsmAlert(
            alert={**_ALERT, "id": alert_id, "createdAt": _iso_ms(start), "updatedAt": _iso_ms(start)},
            logs=make_logs(logs, start),
            notes=make_notes(notes, start),
        )
        self.alerts[alert_id] = alert
        return alert

    def served(self, alert_id: str, tail: str) -> list[Recorded]:
        """The requests for one list of one alert ("/logs", "/notes"), in order."""
        path = f"/jsm/ops/api/{self.cloud_id}/v1/alerts/{alert_id}{tail}"
        return [r for r in self.requests if r.path == path]


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _key(moment: datetime, index: int) -> str:
    """`<epoch ms>_<epoch ns>` like the spec's AlertLogLink example "1492000072838_1492000072838234593"."""
    ms = int(moment.timestamp() * 1000)
    return f"{ms}_{ms * 1_000_000 + index % 1_000_000:019d}"


_LOG_TEXTS = [
    ("Alert created via API", "system"),
    (_LOG["log"], _LOG["logType"]),
    ("Alert acknowledged via web", "system"),
    ("Alert escalated to next", "system"),
    ("Alert closed via web", "system"),
]


def make_logs(count: int, start: datetime) -> list[dict[str, Any]]:
    """`count` AlertLog records one second apart, oldest first; `_key` is the fake's own paging key."""
    logs = []
    for index in range(count):
        moment = start + timedelta(seconds=index)
        text, kind = _LOG_TEXTS[0 if index == 0 else -1 if index == count - 1 else 1 + (index - 1) % 3]
        logs.append(
            {
                "logTime": _iso_ms(moment),
                "logType": kind,
                "log": text,
                "owner": _LOG["owner"],
                "_key": _key(moment, index),
            }
        )
    return logs


def make_notes(count: int, start: datetime) -> list[dict[str, Any]]:
    notes = []
    for index in range(count):
        moment = start + timedelta(minutes=1 + index)
        notes.append(
            {
                "id": str(int(moment.timestamp() * 1000) * 1_000_000 + index),
                "createdAt": _iso_ms(moment),
                "updatedAt": _iso_ms(moment),
                "note": f"Investigating, update {index + 1}" if index else _NOTE["note"],
                "owner": _NOTE["owner"],
                "_key": _key(moment, index),
            }
        )
    return notes


def _failure(state: FakeJsm, status: int) -> Response:
    if status == 401:
        return JSONResponse(UNAUTHORIZED, status_code=401)
    if status == 403:
        return JSONResponse(FORBIDDEN, status_code=403)
    if status == 404:
        return JSONResponse(NOT_FOUND, status_code=404)
    if status == 429:
        headers = {"Retry-After": state.retry_after} if state.retry_after else {}
        return JSONResponse({"errors": [{"title": "Too many requests", "code": "RATE_LIMIT"}]}, 429, headers)
    return JSONResponse({"errors": [{"title": "Internal server error", "code": "INTERNAL"}]}, status_code=status)


def jsm_app(state: FakeJsm) -> FastAPI:
    app = fake_app(
        state,
        authorized=lambda request: request.headers.get("authorization") == state.authorization,
        unauthorized=lambda: JSONResponse(UNAUTHORIZED, status_code=401),
        failure=lambda status: _failure(state, status),
    )
    prefix = "/jsm/ops/api/{cloud_id}/v1/alerts/{alert_id}"

    def alert_of(cloud_id: str, alert_id: str) -> FakeJsmAlert | None:
        return state.alerts.get(alert_id) if cloud_id == state.cloud_id else None

    @app.get(prefix)
    async def get_alert(cloud_id: str, alert_id: str) -> Response:
        found = alert_of(cloud_id, alert_id)
        return JSONResponse(found.alert) if found else JSONResponse(NOT_FOUND, status_code=404)

    @app.get(prefix + "/logs")
    async def logs(cloud_id: str, alert_id: str, request: Request) -> Response:
        found = alert_of(cloud_id, alert_id)
        if not found:
            return JSONResponse(NOT_FOUND, status_code=404)
        return _page(state, request, f"/v1/alerts/{alert_id}/logs", found.logs)

    @app.get(prefix + "/notes")
    async def notes(cloud_id: str, alert_id: str, request: Request) -> Response:
        found = alert_of(cloud_id, alert_id)
        if not found:
            return JSONResponse(NOT_FOUND, status_code=404)
        return _page(state, request, f"/v1/alerts/{alert_id}/notes", found.notes)

    return app


def _page(state: FakeJsm, request: Request, link_path: str, items: list[dict[str, Any]]) -> Response:
    """One page after `after` (the last key served), `size` long (capped at `max_size`)."""
    try:
        size = int(request.query_params.get("size", DEFAULT_SIZE))
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_SIZE:
        return JSONResponse({"errors": [{"title": "size must be between 1 and 100", "code": "INVALID"}]}, 422)
    after = request.query_params.get("after")
    remaining = [item for item in items if after is None or item["_key"] > after]
    chunk = remaining[: min(size, state.max_size)]
    body: dict[str, Any] = {"values": [{k: v for k, v in item.items() if k != "_key"} for item in chunk]}
    if len(remaining) > len(chunk):
        body["links"] = {"next": f"{link_path}?{urlencode({'after': chunk[-1]['_key'], 'size': size})}"}
    else:
        body["links"] = {}
    return JSONResponse(body)
