"""A loopback PagerDuty REST API v2 (incidents, log entries, alerts, notes) built from the fixture shapes.

What it copies from the real one (docs/REST-API/09-Pagination.md, 14-Errors.md, 04-Rate-Limits.md in
PagerDuty/developer-docs): `Authorization: Token token=…`, classic `limit`/`offset`/`more`/`total`
paging with `limit` capped at 100 and `offset + limit <= 10000` (else 400), log entries newest first,
errors as `{"error": {"message", "code"}}`, 429 with `ratelimit-*` headers (or bare).

Outages (`Switchable`, tests/fakes/serve.py), until `heal()`:
* `fail_with(401)`: `{"error": {"message": "Authentication failed", "code": 2006}}` even for the
  right token (a revoked or rotated API key);
* `fail_with(404)`, `fail_with(429)`, `fail_with(500)`: as `fail_next` answers them;
* `path="/incidents/Q1/log_entries"` narrows the outage to one prefix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app, reset_fake
from tests.fixtures import fixture_json

MAX_RECORDS = 10_000
MAX_LIMIT = 100
DEFAULT_LIMIT = 25
API = "https://api.pagerduty.com"
WEB = "https://subdomain.pagerduty.com"

# Confirmed: 2100 "Not Found" is the spec's error example; 2006 is "Authentication failed" and 2020
# "Rate Limit Exceeded" in the docs. The wording PagerDuty uses for an offset+limit past 10000 is not
# documented, so the fake answers with the generic documented 2001 message.
NOT_FOUND = {"error": {"message": "Not Found", "code": 2100}}
UNAUTHORIZED = {"error": {"message": "Authentication failed", "code": 2006}}
RATE_LIMITED = {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
TOO_FAR = {"error": {"message": "Invalid Input Provided", "code": 2001}}
INTERNAL = {"error": {"message": "An internal error has occurred. PagerDuty team has been notified.", "code": 2000}}


@dataclass
class FakeIncident:
    incident: dict[str, Any]
    log_entries: list[dict[str, Any]] = field(default_factory=list)  # oldest first; served newest first
    alerts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakePagerDuty(Switchable):
    token: str = "pd-fake-token"
    incidents: dict[str, FakeIncident] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    # failure injection
    fail_next: list[int] = field(default_factory=list)  # statuses to answer next, in order
    rate_limit_headers: bool = True  # a 429 carries ratelimit-* headers and the error body; else it is bare
    ratelimit_reset: int = 20
    retry_after: str | None = None  # also send Retry-After on a 429
    delay_seconds: float = 0.0  # every answer waits this long
    epoch: int = 0  # moved on by reset(): stale delayed requests stand down
    fail_after_offset: int | None = None  # list requests at or past this offset answer 500
    outage: Outage | None = None  # fail_with(...) / heal(): see the module docstring
    refused: int = 0  # requests the outage answered

    def reset(self) -> None:
        """Back to defaults, in place: one server can serve many tests."""
        reset_fake(self)

    def add_incident(
        self,
        incident_id: str,
        *,
        log_entries: int | list[dict[str, Any]] = 0,
        alerts: int | list[dict[str, Any]] = 0,
        notes: int | list[dict[str, Any]] = 0,
        start: datetime = datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
    ) -> FakeIncident:
        entries = make_log_entries(incident_id, log_entries, start) if isinstance(log_entries, int) else log_entries
        end = start + timedelta(seconds=30 * max(len(entries) - 1, 0))
        incident = FakeIncident(
            incident=make_incident(incident_id, start, end),
            log_entries=entries,
            alerts=make_alerts(incident_id, alerts, start) if isinstance(alerts, int) else alerts,
            notes=make_notes(incident_id, notes, start) if isinstance(notes, int) else notes,
        )
        self.incidents[incident_id] = incident
        return incident

    def paths(self) -> list[str]:
        return [item.path for item in self.requests]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pd_id(*parts: object, length: int = 14, prefix: str = "Q") -> str:
    """A deterministic PagerDuty-looking id (upper-case letters and digits)."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest().upper()
    return prefix + digest[: length - 1]


_INCIDENT = fixture_json("pagerduty_rest_get_incident_response.json")["incident"]
_ENTRY = fixture_json("pagerduty_rest_incident_log_entries_response.json")["log_entries"][0]
_ALERT = fixture_json("pagerduty_rest_incident_alerts_response.json")["alerts"][0]
_NOTE = fixture_json("pagerduty_rest_incident_notes_response.json")["notes"][0]
_USER = _INCIDENT["assignments"][0]["assignee"]  # Earline Greenholt
_RESPONDER = _INCIDENT["incidents_responders"][0]["user"]  # Lee Turner
_SERVICE = _INCIDENT["service"]


def _incident_ref(incident_id: str) -> dict[str, Any]:
    return {
        "id": incident_id,
        "type": "incident_reference",
        "summary": f"[#1234] {_INCIDENT['title']}",
        "self": f"{API}/incidents/{incident_id}",
        "html_url": f"{WEB}/incidents/{incident_id}",
    }


def make_incident(incident_id: str, created_at: datetime, resolved_at: datetime | None = None) -> dict[str, Any]:
    """The fixture's incident with this id and times (resolved when `resolved_at` is given)."""
    incident = dict(_INCIDENT)
    incident.update(
        id=incident_id,
        self=f"{API}/incidents/{incident_id}",
        html_url=f"{WEB}/incidents/{incident_id}",
        created_at=_iso(created_at),
        updated_at=_iso(resolved_at or created_at),
        status="resolved" if resolved_at else "triggered",
        resolved_at=_iso(resolved_at) if resolved_at else None,
        last_status_change_at=_iso(resolved_at or created_at),
        first_trigger_log_entry={
            **_INCIDENT["first_trigger_log_entry"],
            "id": _pd_id(incident_id, 0),
            "self": f"{API}/log_entries/{_pd_id(incident_id, 0)}?incident_id={incident_id}",
            "html_url": f"{WEB}/incidents/{incident_id}/log_entries/{_pd_id(incident_id, 0)}",
        },
    )
    return incident


_MIDDLE = ["notify_log_entry", "acknowledge_log_entry", "annotate_log_entry", "escalate_log_entry"]


def _entry_type(index: int, count: int) -> str:
    if index == 0:
        return "trigger_log_entry"
    if index == count - 1:
        return "resolve_log_entry"
    return _MIDDLE[(index - 1) % len(_MIDDLE)]


def _name(ref: dict[str, Any]) -> str:
    return str(ref["summary"])


def make_log_entries(incident_id: str, count: int, start: datetime) -> list[dict[str, Any]]:
    """`count` log entries, oldest first, 30 s apart: a trigger, then notify/acknowledge/annotate/escalate
    in turn, and a resolve last. Ids are unique and the same on every call."""
    entries: list[dict[str, Any]] = []
    for index in range(count):
        kind = _entry_type(index, count)
        entry_id = _pd_id(incident_id, index)
        entry: dict[str, Any] = {
            "id": entry_id,
            "type": kind,
            "summary": "",
            "self": f"{API}/log_entries/{entry_id}?incident_id={incident_id}",
            "html_url": f"{WEB}/incidents/{incident_id}/log_entries/{entry_id}",
            "created_at": _iso(start + timedelta(seconds=30 * index)),
            "agent": _USER,
            "channel": {"type": "website"},
            "service": _SERVICE,
            "incident": _incident_ref(incident_id),
            "teams": _ENTRY["teams"],
            "contexts": [],
        }
        if kind == "trigger_log_entry":
            entry.update(
                summary=_ENTRY["summary"],
                agent=_ENTRY["agent"],
                channel=_ENTRY["channel"],
                event_details=_ENTRY["event_details"],
            )
        elif kind == "notify_log_entry":
            entry.update(
                summary=f"Notified {_name(_USER)} by SMS",
                agent=_SERVICE,
                user=_USER,
                channel={"type": "auto", "notification": {"type": "sms_notification", "status": "success"}},
            )
        elif kind == "acknowledge_log_entry":
            entry.update(summary=f"Acknowledged by {_name(_USER)}", acknowledgement_timeout=1800)
        elif kind == "annotate_log_entry":
            entry.update(summary="Note added", channel={"type": "note"}, note=f"Status update {index}")
        elif kind == "escalate_log_entry":
            entry.update(
                summary=f"Escalated to {_name(_RESPONDER)} by timeout",
                agent=_SERVICE,
                channel={"type": "timeout"},
                assignees=[_RESPONDER],
            )
        else:
            entry.update(summary=f"Resolved by {_name(_USER)}")
        entries.append(entry)
    return entries


def make_alerts(incident_id: str, count: int, start: datetime) -> list[dict[str, Any]]:
    alerts = []
    for index in range(count):
        alert_id = _pd_id(incident_id, "alert", index, length=7, prefix="P")
        alerts.append(
            {
                **_ALERT,
                "id": alert_id,
                "self": f"{API}/incidents/{incident_id}/alerts/{alert_id}",
                "html_url": f"{WEB}/alerts/{alert_id}",
                "created_at": _iso(start + timedelta(seconds=10 * index)),
                "alert_key": hashlib.md5(f"{incident_id}:{index}".encode()).hexdigest(),
                "incident": {"id": incident_id, "type": "incident_reference"},
            }
        )
    return alerts


def make_notes(incident_id: str, count: int, start: datetime) -> list[dict[str, Any]]:
    notes = []
    for index in range(count):
        moment = _iso(start + timedelta(minutes=5 * (index + 1)))
        notes.append(
            {
                **_NOTE,
                "id": _pd_id(incident_id, "note", index, length=7, prefix="P"),
                "content": f"{_NOTE['content']} ({index + 1})",
                "created_at": moment,
                "updated_at": moment,
            }
        )
    return notes


def _error(status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def _failure(state: FakePagerDuty, status: int) -> Response:
    if status == 429:
        if not state.rate_limit_headers:
            headers = {"retry-after": state.retry_after} if state.retry_after else None
            return _error(429, None, headers)
        headers = {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": str(state.ratelimit_reset)}
        if state.retry_after:
            headers["retry-after"] = state.retry_after
        return _error(429, RATE_LIMITED, headers)
    if status == 401:
        return _error(401, UNAUTHORIZED)
    if status == 404:
        return _error(404, NOT_FOUND)
    if status >= 500:
        return _error(status, INTERNAL)
    return _error(status, {"error": {"message": "Invalid Input Provided", "code": 2001}})


def pagerduty_app(state: FakePagerDuty) -> FastAPI:
    app = fake_app(
        state,
        authorized=lambda request: request.headers.get("authorization") == f"Token token={state.token}",
        unauthorized=lambda: _error(401, UNAUTHORIZED),
        failure=lambda status: _failure(state, status),
    )

    def incident_of(incident_id: str) -> FakeIncident | None:
        return state.incidents.get(incident_id)

    @app.get("/incidents/{incident_id}")
    async def get_incident(incident_id: str) -> Response:
        found = incident_of(incident_id)
        return JSONResponse({"incident": found.incident}) if found else _error(404, NOT_FOUND)

    @app.get("/incidents/{incident_id}/log_entries")
    async def log_entries(incident_id: str, request: Request) -> Response:
        found = incident_of(incident_id)
        if not found:
            return _error(404, NOT_FOUND)
        return _page(state, request, "log_entries", list(reversed(found.log_entries)))

    @app.get("/incidents/{incident_id}/alerts")
    async def alerts(incident_id: str, request: Request) -> Response:
        found = incident_of(incident_id)
        if not found:
            return _error(404, NOT_FOUND)
        return _page(state, request, "alerts", found.alerts)

    @app.get("/incidents/{incident_id}/notes")
    async def notes(incident_id: str) -> Response:
        found = incident_of(incident_id)
        return JSONResponse({"notes": found.notes}) if found else _error(404, NOT_FOUND)

    return app


def _page(state: FakePagerDuty, request: Request, key: str, items: list[dict[str, Any]]) -> Response:
    try:
        limit = min(int(request.query_params.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        return _error(400, {"error": {"message": "Invalid Input Provided", "code": 2001}})
    if limit < 1 or offset < 0 or offset + limit > MAX_RECORDS:
        return _error(400, TOO_FAR)
    if state.fail_after_offset is not None and offset >= state.fail_after_offset:
        return _error(500, INTERNAL)
    chunk = items[offset : offset + limit]
    total = len(items) if request.query_params.get("total") == "true" else None
    return JSONResponse(
        {key: chunk, "limit": limit, "offset": offset, "more": offset + len(chunk) < len(items), "total": total}
    )
