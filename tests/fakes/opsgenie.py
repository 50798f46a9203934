"""A loopback Opsgenie Alert API v2 (alert, logs, notes) built from the fixture shapes.

From the official OAS (opsgenie/opsgenie-oas): `Authorization: GenieKey …`, `identifierType`,
logs/notes paged by the items' `offset` strings with `direction`, `limit` (max 100) and `order`
(default desc), `paging: {first, next}`, every body carrying `took` and `requestId`, and the
`X-RateLimit-*` headers on a 429.

Outages (`Switchable`, tests/fakes/serve.py), until `heal()`: `fail_with(401)` ("Could not
authenticate"), `fail_with(404)`, `fail_with(429)`, `fail_with(500)`, as `fail_next` answers them.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app, reset_fake
from tests.fixtures import fixture_json

MAX_LIMIT = 100
DEFAULT_LIMIT = 20

_ALERT = fixture_json("opsgenie_api_list_alerts_response.json")["data"][0]
_LOGS = fixture_json("opsgenie_api_list_alert_logs_response.json")["data"]


def _body(extra: dict[str, Any]) -> dict[str, Any]:
    return {**extra, "took": 0.004, "requestId": str(uuid.uuid4())}


# "Could not authenticate" as the brief gives it; "Alert does not exist" and the 429 text are not
# confirmed from a source here (only the {message, took, requestId} shape is, from the OAS).
def unauthorized() -> dict[str, Any]:
    return _body({"message": "Could not authenticate"})


def not_found() -> dict[str, Any]:
    return _body({"message": "Alert does not exist"})


@dataclass
class FakeAlert:
    alert: dict[str, Any]
    logs: list[dict[str, Any]] = field(default_factory=list)  # any order; served sorted by offset
    notes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeOpsgenie(Switchable):
    api_key: str = "og-fake-key"
    alerts: dict[str, FakeAlert] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    rate_limit_period: int | None = 60  # X-RateLimit-Period-In-Sec on a 429 (None: header left out)
    retry_after: str | None = None
    delay_seconds: float = 0.0
    epoch: int = 0  # moved on by reset(): stale delayed requests stand down
    next_link: bool = True  # paging.next on pages that are followed by more
    max_limit: int = MAX_LIMIT  # a lower cap makes pages shorter than asked (paging.next still says "more")
    outage: Outage | None = None  # fail_with(...) / heal(): see the module docstring
    refused: int = 0  # requests the outage answered

    def reset(self) -> None:
        """Back to defaults, in place: one server can serve many tests."""
        reset_fake(self)

    def add_alert(
        self,
        alert_id: str,
        *,
        logs: int | list[dict[str, Any]] = 0,
        notes: int | list[dict[str, Any]] = 0,
        start: datetime = datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
    ) -> FakeAlert:
        alert = FakeAlert(
            alert=make_alert(alert_id, start),
            logs=make_logs(logs, start) if isinstance(logs, int) else logs,
            notes=make_notes(notes, start) if isinstance(notes, int) else notes,
        )
        self.alerts[alert_id] = alert
        return alert


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _offset(moment: datetime, index: int) -> str:
    """`<epoch ms>_<epoch ns>` like the fixture's "1492000072838_1492000072838234593"."""
    ms = int(moment.timestamp() * 1000)
    return f"{ms}_{ms * 1_000_000 + index % 1_000_000:019d}"


def make_alert(alert_id: str, created_at: datetime) -> dict[str, Any]:
    return {
        **_ALERT,
        "id": alert_id,
        "tinyId": str(int(hashlib.sha256(alert_id.encode()).hexdigest(), 16) % 10_000),
        "createdAt": _iso_ms(created_at),
        "updatedAt": _iso_ms(created_at + timedelta(hours=1)),
        "lastOccurredAt": _iso_ms(created_at),
        "description": "Our servers are in danger",
        "details": {"region": "eu-west-1"},
        "actions": [],
        "entity": "",
    }


_LOG_TEXTS = [
    ("Alert created via API", "system"),
    ("Alert acknowledged via web", "system"),
    ("Viewed on [web]", "alertRecipient"),
    ("Alert escalated to next", "system"),
    ("Alert closed via web", "system"),
]


def make_logs(count: int, start: datetime) -> list[dict[str, Any]]:
    """`count` log records, oldest first, one second apart, with increasing `offset` strings."""
    logs = []
    for index in range(count):
        moment = start + timedelta(seconds=index)
        if index == 0:
            text, kind = _LOG_TEXTS[0]
        elif index == count - 1:
            text, kind = _LOG_TEXTS[-1]
        else:
            text, kind = _LOG_TEXTS[1 + (index - 1) % 3]
        owner = _LOGS[0]["owner"] if kind == "system" else _LOGS[1]["owner"]
        logs.append(
            {"log": text, "type": kind, "owner": owner, "createdAt": _iso_ms(moment), "offset": _offset(moment, index)}
        )
    return logs


def make_notes(count: int, start: datetime) -> list[dict[str, Any]]:
    notes = []
    for index in range(count):
        moment = start + timedelta(minutes=1 + index)
        notes.append(
            {
                "note": f"Investigating, update {index + 1}",
                "owner": _LOGS[0]["owner"],
                "createdAt": _iso_ms(moment),
                "offset": _offset(moment, index),
            }
        )
    return notes


def _failure(state: FakeOpsgenie, status: int) -> Response:
    if status == 429:
        headers = {"X-RateLimit-State": "THROTTLED"}
        if state.rate_limit_period is not None:
            headers["X-RateLimit-Period-In-Sec"] = str(state.rate_limit_period)
        if state.retry_after:
            headers["Retry-After"] = state.retry_after
        return JSONResponse(_body({"message": "Too many requests"}), status_code=429, headers=headers)
    if status == 401:
        return JSONResponse(unauthorized(), status_code=401)
    if status == 404:
        return JSONResponse(not_found(), status_code=404)
    return JSONResponse(_body({"message": "Internal Server Error"}), status_code=status)


def opsgenie_app(state: FakeOpsgenie) -> FastAPI:
    app = fake_app(
        state,
        authorized=lambda request: request.headers.get("authorization") == f"GenieKey {state.api_key}",
        unauthorized=lambda: JSONResponse(unauthorized(), status_code=401),
        failure=lambda status: _failure(state, status),
    )

    def alert_of(alert_id: str, request: Request) -> FakeAlert | None:
        if request.query_params.get("identifierType", "id") != "id":
            return None  # the fake knows alerts by id only
        return state.alerts.get(alert_id)

    @app.get("/v2/alerts/{alert_id}")
    async def get_alert(alert_id: str, request: Request) -> Response:
        found = alert_of(alert_id, request)
        if not found:
            return JSONResponse(not_found(), status_code=404)
        return JSONResponse(_body({"data": found.alert}))

    @app.get("/v2/alerts/{alert_id}/logs")
    async def logs(alert_id: str, request: Request) -> Response:
        found = alert_of(alert_id, request)
        if not found:
            return JSONResponse(not_found(), status_code=404)
        return _page(state, request, found.logs)

    @app.get("/v2/alerts/{alert_id}/notes")
    async def notes(alert_id: str, request: Request) -> Response:
        found = alert_of(alert_id, request)
        if not found:
            return JSONResponse(not_found(), status_code=404)
        return _page(state, request, found.notes)

    return app


def _page(state: FakeOpsgenie, request: Request, items: list[dict[str, Any]]) -> Response:
    params = request.query_params
    try:
        limit = min(int(params.get("limit", DEFAULT_LIMIT)), state.max_limit)
    except ValueError:
        limit = 0
    order = params.get("order", "desc")
    direction = params.get("direction", "next")
    if limit < 1 or order not in ("asc", "desc") or direction != "next":
        return JSONResponse(
            _body({"message": "Request is not valid (this fake pages with direction=next)"}), status_code=422
        )
    ordered = sorted(items, key=lambda item: item["offset"], reverse=order == "desc")
    cursor = params.get("offset")
    if cursor:
        ordered = [item for item in ordered if (item["offset"] > cursor if order == "asc" else item["offset"] < cursor)]
    chunk = ordered[:limit]
    base = str(request.url.replace(query=""))
    common = {"identifierType": "id", "limit": str(limit), "order": order, "direction": "next"}
    paging: dict[str, str] = {"first": f"{base}?{urlencode(common)}"}
    if state.next_link and len(ordered) > limit:
        paging["next"] = f"{base}?{urlencode({**common, 'offset': chunk[-1]['offset']})}"
    return JSONResponse(_body({"data": chunk, "paging": paging}))
