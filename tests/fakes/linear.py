"""A loopback Linear GraphQL API: issueCreate, issues(filter), issue(id) — shapes from Linear's schema.

No real recorded Linear answer exists in the fixtures (README §5), so the shapes follow
`packages/sdk/src/schema.graphql` (linear/linear): `IssueCreateInput` with an optional client-chosen
`id`, `IssuePayload {success, issue}`, `WorkflowState.type` ∈ triage, backlog, unstarted, started,
completed, canceled, duplicate; errors as GraphQL `errors[]` whose `extensions` carry `code`
("RATELIMITED", "AUTHENTICATION_ERROR", "FORBIDDEN", "INVALID_INPUT"), `type` (the SDK's names:
"ratelimited", "authentication error", …) and `userPresentableMessage`; rate-limit headers
`x-ratelimit-{requests,complexity}-{limit,remaining,reset}` (reset in epoch milliseconds).

This is not a GraphQL server: it tells the three operations apart by their root field and reads
the variables. That the client's documents are valid against Linear's real schema was checked
against the schema itself, not here.

Outages (`Switchable`, tests/fakes/serve.py), until `heal()`:
* `fail_with("FORBIDDEN")`, `fail_with("INVALID_INPUT")`, `fail_with("AUTHENTICATION_ERROR")`,
  `fail_with("RATELIMITED")`, `fail_with("INTERNAL_SERVER_ERROR")`: a GraphQL `errors[]` answer of
  that `extensions.code` under HTTP `error_status` (`fail_with("FORBIDDEN", status=200)` for
  GraphQL's usual "200 with errors"; AUTHENTICATION_ERROR is always 401);
* `fail_with(429)`, `fail_with(502)`: that HTTP status.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app, reset_fake

STATE_TYPES = ("triage", "backlog", "unstarted", "started", "completed", "canceled", "duplicate")
STATE_NAMES = {
    "triage": "Triage",
    "backlog": "Backlog",
    "unstarted": "Todo",
    "started": "In Progress",
    "completed": "Done",
    "canceled": "Canceled",
    "duplicate": "Duplicate",
}
_ERRORS = {
    "RATELIMITED": ("ratelimited", "Rate limit exceeded", "You have exceeded the API rate limit. Retry later."),
    "AUTHENTICATION_ERROR": (
        "authentication error",
        "Authentication required, not authenticated",
        "You need to authenticate to access this operation.",
    ),
    "FORBIDDEN": ("forbidden", "Forbidden", "You don't have access to this team."),
    "INVALID_INPUT": ("invalid input", "Argument Validation Error", "Invalid input."),
    "INTERNAL_SERVER_ERROR": ("internal error", "Internal server error", "Something went wrong."),
}


def graphql_errors(code: str, user_message: str | None = None) -> dict[str, Any]:
    kind, message, presentable = _ERRORS[code]
    return {
        "errors": [
            {
                "message": message,
                "extensions": {
                    "code": code,
                    "type": kind,
                    "userError": code != "INTERNAL_SERVER_ERROR",
                    "userPresentableMessage": user_message or presentable,
                },
            }
        ]
    }


@dataclass
class FakeLinear(Switchable):
    api_key: str = "lin_api_fake"
    team_id: str = "1c3a4d5e-0000-4000-8000-000000000001"
    team_key: str = "ENG"
    users: tuple[str, ...] = ("user-1",)  # assignable user ids
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # by UUID
    requests: list[Recorded] = field(default_factory=list)
    created: int = 0  # issues made, crashed answers included
    inputs: list[dict[str, Any]] = field(default_factory=list)  # IssueCreateInput of issues made
    updates: list[dict[str, Any]] = field(default_factory=list)  # IssueUpdateInput of issueUpdate calls
    next_number: int = 1
    # failure injection: an int answers that HTTP status; a str answers `error_status` with errors[] of
    # that extensions.code ("RATELIMITED", "AUTHENTICATION_ERROR", "FORBIDDEN", "INVALID_INPUT", …)
    fail_next: list[int | str] = field(default_factory=list)
    error_status: int = 400  # HTTP status of an injected errors[] answer (Linear uses 400, sometimes 200)
    retry_after: str | None = None  # Retry-After on a rate-limited answer
    reset_in_ms: int = 45_000  # x-ratelimit-requests-reset = now + this, on a rate-limited answer
    crash_after_create: bool = False  # make the issue, then answer 500 as if the answer got lost
    epoch: int = 0
    outage: Outage | None = None  # fail_with(...) / heal(): see the module docstring
    refused: int = 0  # requests the outage answered

    def reset(self) -> None:
        reset_fake(self)

    def fail_with(self, kind: int | str, *, path: str | None = None, status: int | None = None) -> None:
        """Switchable.fail_with; `status` is the HTTP status of an errors[] answer (sets `error_status`)."""
        if status is not None:
            self.error_status = status
        super().fail_with(kind, path=path)

    def add_issue(
        self, description: str, state_type: str = "unstarted", issue_id: str | None = None, title: str = "Existing"
    ) -> dict[str, Any]:
        return self._make(
            {"id": issue_id, "title": title, "description": description, "teamId": self.team_id}, state_type
        )

    def move(self, identifier: str, state_type: str) -> None:
        """A person moves the issue into a workflow state of `state_type`."""
        assert state_type in STATE_TYPES
        issue = self.by_key(identifier)
        assert issue is not None
        issue["state"] = {"type": state_type, "name": STATE_NAMES[state_type]}

    def archive(self, identifier: str) -> None:
        issue = self.by_key(identifier)
        assert issue is not None
        issue["archivedAt"] = "2024-06-01T00:00:00.000Z"

    def by_key(self, key: str) -> dict[str, Any] | None:
        return self.issues.get(key) or next(
            (issue for issue in self.issues.values() if issue["identifier"] == key), None
        )

    def _make(self, values: dict[str, Any], state_type: str = "unstarted") -> dict[str, Any]:
        number = self.next_number
        self.next_number += 1
        identifier = f"{self.team_key}-{number}"
        issue_id = values.get("id") or f"00000000-0000-4000-8000-{number:012d}"
        issue = {
            "id": issue_id,
            "identifier": identifier,
            "number": number,
            "url": f"https://linear.app/acme/issue/{identifier.lower()}/item-{number}",
            "title": values.get("title") or "",
            "description": values.get("description"),
            "priority": values.get("priority", 0),
            "dueDate": values.get("dueDate"),
            "assigneeId": values.get("assigneeId"),
            "archivedAt": None,
            "state": {"type": state_type, "name": STATE_NAMES[state_type]},
        }
        self.issues[issue_id] = issue
        return issue


def _view(issue: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": issue["id"],
        "identifier": issue["identifier"],
        "url": issue["url"],
        "state": {"type": issue["state"]["type"]},
    }


def _rate_headers(state: FakeLinear, exhausted: bool) -> dict[str, str]:
    now_ms = int(time.time() * 1000)
    headers = {
        "x-ratelimit-requests-limit": "5000",
        "x-ratelimit-requests-remaining": "0" if exhausted else "4999",
        "x-ratelimit-requests-reset": str(now_ms + (state.reset_in_ms if exhausted else 3_600_000)),
        "x-ratelimit-complexity-limit": "3000000",
        "x-ratelimit-complexity-remaining": "2999000",
        "x-ratelimit-complexity-reset": str(now_ms + 3_600_000),
    }
    if exhausted and state.retry_after:
        headers["retry-after"] = state.retry_after
    return headers


def _failure(state: FakeLinear, kind: int | str) -> Response:
    if isinstance(kind, str):
        status = 401 if kind == "AUTHENTICATION_ERROR" else state.error_status
        return JSONResponse(
            graphql_errors(kind), status_code=status, headers=_rate_headers(state, kind == "RATELIMITED")
        )
    if kind == 429:
        return JSONResponse(graphql_errors("RATELIMITED"), status_code=429, headers=_rate_headers(state, True))
    if kind == 401:
        return JSONResponse(graphql_errors("AUTHENTICATION_ERROR"), status_code=401)
    if kind >= 500:
        return Response("upstream connect error", status_code=kind, media_type="text/plain")
    return JSONResponse(graphql_errors("INVALID_INPUT"), status_code=kind)


def _invalid(message: str) -> Response:
    return JSONResponse(graphql_errors("INVALID_INPUT", message), status_code=400)


def linear_app(state: FakeLinear) -> FastAPI:
    app = fake_app(
        state,
        authorized=lambda request: request.headers.get("authorization") == state.api_key,
        unauthorized=lambda: JSONResponse(graphql_errors("AUTHENTICATION_ERROR"), status_code=401),
        failure=lambda kind: _failure(state, kind),
        headers=lambda: _rate_headers(state, False),
    )

    @app.post("/graphql")
    async def graphql(request: Request) -> Response:
        body = await request.json()
        query = str(body.get("query") or "")
        variables = body.get("variables") or {}
        if re.search(r"\bissueUpdate\s*\(", query):
            return update(str(variables.get("id")), variables.get("input") or {})
        if re.search(r"\bissueCreate\s*\(", query):
            return create(variables.get("input") or {})
        if re.search(r"\bissues\s*\(", query):
            return find(query, variables)
        if re.search(r"\bissue\s*\(", query):
            return status(variables)
        return _invalid("The fake knows issueCreate, issues and issue only")

    def create(values: dict[str, Any]) -> Response:
        if values.get("teamId") != state.team_id:
            return _invalid("Entity not found: Team")
        if not values.get("title"):
            return _invalid("title must not be empty")
        if values.get("id") and values["id"] in state.issues:
            return _invalid("An issue with this id already exists.")
        if values.get("priority") not in (None, 0, 1, 2, 3, 4):
            return _invalid("priority must be between 0 and 4")
        due = values.get("dueDate")
        if due is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(due)):
            return _invalid("dueDate must be a TimelessDate (YYYY-MM-DD)")
        if values.get("assigneeId") not in (None, *state.users):
            return _invalid("Entity not found: User")
        issue = state._make(values, "unstarted" if values.get("assigneeId") else "backlog")
        state.created += 1
        state.inputs.append(values)
        if state.crash_after_create:
            return Response("upstream connect error", status_code=502, media_type="text/plain")
        return JSONResponse({"data": {"issueCreate": {"success": True, "issue": _view(issue)}}})

    def find(query: str, variables: dict[str, Any]) -> Response:
        wanted_id = variables.get("id")
        line = variables.get("line")
        include_archived = bool(re.search(r"includeArchived:\s*true", query))
        nodes = [
            _view(issue)
            for issue in state.issues.values()
            if (include_archived or issue["archivedAt"] is None)
            and (issue["id"] == wanted_id or (line and line in (issue["description"] or "")))
        ]
        return JSONResponse({"data": {"issues": {"nodes": nodes[:1]}}})

    def status(variables: dict[str, Any]) -> Response:
        issue = state.by_key(str(variables.get("id")))
        if issue is None:
            return JSONResponse(
                {**graphql_errors("INVALID_INPUT", "Entity not found: Issue"), "data": None}, status_code=200
            )
        assignee = {"id": issue["assigneeId"]} if issue.get("assigneeId") else None
        team = {
            "states": {"nodes": [{"id": f"state-{t}", "type": t, "position": n} for n, t in enumerate(STATE_TYPES)]}
        }
        return JSONResponse(
            {"data": {"issue": {**_view(issue), "assignee": assignee, "dueDate": issue.get("dueDate"), "team": team}}}
        )

    def update(key: str, values: dict[str, Any]) -> Response:
        """issueUpdate(id, input: IssueUpdateInput): stateId, assigneeId, dueDate (null clears)."""
        issue = state.by_key(key)
        if issue is None:
            return _invalid("Entity not found: Issue")
        if "assigneeId" in values and values["assigneeId"] not in (None, *state.users):
            return _invalid("Entity not found: User")
        due = values.get("dueDate")
        if due is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(due)):
            return _invalid("dueDate must be a TimelessDate (YYYY-MM-DD)")
        if "stateId" in values:
            kind = str(values["stateId"]).removeprefix("state-")
            if kind not in STATE_TYPES:
                return _invalid("Entity not found: WorkflowState")
            issue["state"] = {"type": kind, "name": STATE_NAMES[kind]}
        for name in ("assigneeId", "dueDate"):
            if name in values:
                issue[name] = values[name]
        state.updates.append(values)
        return JSONResponse({"data": {"issueUpdate": {"success": True, "issue": _view(issue)}}})

    return app
