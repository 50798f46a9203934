"""Linear (GraphQL API) as a TicketClient: action items become issues in one team.

* One endpoint, `POST https://api.linear.app/graphql`, header `Authorization: <personal API key>`
  (no "Bearer"; pass "Bearer <token>" as the key for an OAuth token).
* create: `issueCreate(input: {id, teamId, title, description, priority, dueDate, assigneeId})`.
  Priority 1 urgent … 4 low: HIGH→2, MEDIUM→3, LOW→4. Labels are not sent: Linear takes label ids,
  not names.
* The marker is stored twice. The issue's own `id` is a UUID derived from (team id, marker) —
  `IssueCreateInput.id` lets the client choose it — and the description ends with the visible line
  "`postmortem:<marker>`" (Linear's Markdown keeps no hidden HTML comments). `find` asks for either in
  one query, archived issues included: the id lookup is exact and immediate; the description match
  still finds an issue whose team id changed in our configuration. A create retried after its answer
  was lost should not make a second issue either, as the id is taken (the fake refuses it as invalid
  input; Linear's exact answer to a reused id is not verified). Caveat: an issue deleted in Linear is
  not found, and its id cannot be created again — a permanent error for a person to look at.
* update: `issue(id)` with its assignee, due date and the team's workflow states, then `issueUpdate(id,
  input: {stateId, assigneeId, dueDate})` with only what differs.
* status: `issue(id: <key>)`; workflow state type completed → done, canceled/duplicate → wont_do,
  started → in_progress, triage/backlog/unstarted → open.

Keys are Linear identifiers ("ENG-123"); `status` also takes the issue's UUID.

Failures come as GraphQL `errors[]` under HTTP 200 or 400 (or 401/403): `extensions.code`
"RATELIMITED" (or `extensions.type` "ratelimited") is transient, waiting for `Retry-After` or the
`x-ratelimit-*-reset` time; types "internal error" and "lock timeout" are transient; everything else
(AUTHENTICATION_ERROR, FORBIDDEN, invalid input, not found…) is permanent, with Linear's own words.
HTTP 429 and 5xx are transient whatever the body says.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx

from postmortem.integrations.http_errors import (
    UpstreamError,
    error_from_response,
    expect_key,
    json_object,
    retry_after_seconds,
)
from postmortem.integrations.tickets import (
    Ticket,
    TicketChange,
    TicketRequest,
    TicketState,
    check_marker,
    exchange,
    json_or_none,
    seconds_until_epoch,
    upstream_error,
)
from postmortem.models import linear_ticket_state

SERVICE = "Linear"
API_URL = "https://api.linear.app/graphql"
PRIORITY_NUMBERS = {"HIGH": 2, "MEDIUM": 3, "LOW": 4}
TRANSIENT_TYPES = frozenset({"ratelimited", "internal error", "lock timeout"})

_FIELDS = "id identifier url state { type }"
CREATE = (
    "mutation CreateTicket($input: IssueCreateInput!) { issueCreate(input: $input) { success issue { "
    + _FIELDS
    + " } } }"
)
FIND = (
    "query FindTicket($id: ID!, $line: String!) { issues(filter: { or: [{ id: { eq: $id } }, "
    "{ description: { contains: $line } }] }, first: 1, includeArchived: true) { nodes { " + _FIELDS + " } } }"
)
STATUS = "query TicketStatus($id: String!) { issue(id: $id) { " + _FIELDS + " } }"
CURRENT = (
    "query TicketNow($id: String!) { issue(id: $id) { id identifier url state { type } assignee { id } dueDate "
    "team { states { nodes { id type position } } } } }"
)
UPDATE = (
    "mutation UpdateTicket($id: String!, $input: IssueUpdateInput!) { issueUpdate(id: $id, input: $input) "
    "{ success issue { " + _FIELDS + " } } }"
)
# The workflow state type an action item's status goes to (the first such state of the team's).
STATE_TYPES: dict[TicketState, str] = {
    "open": "unstarted",
    "in_progress": "started",
    "done": "completed",
    "wont_do": "canceled",
}


def marker_line(marker: str) -> str:
    """The line that carries the marker in a description (the backticks end it: "pm-1" never matches "pm-10")."""
    return f"`postmortem:{marker}`"


def issue_id(team_id: str, marker: str) -> str:
    """The issue UUID for `marker` in team `team_id`: the same on every try, in UUID v4 format
    (version and variant bits set) as `IssueCreateInput.id` asks for."""
    digest = hashlib.sha256(f"postmortem-ticket:{team_id}:{marker}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


class LinearClient:
    def __init__(self, api_url: str, api_key: str, team_id: str, http: httpx.AsyncClient) -> None:
        self._url = api_url
        self._http = http
        self.team_id = team_id
        self._headers = {"Authorization": api_key, "Content-Type": "application/json"}

    async def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await exchange(
            self._http,
            SERVICE,
            "POST",
            self._url,
            json={"query": query, "variables": variables},
            headers=self._headers,
        )
        body = json_or_none(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors:
            raise graphql_error(response, errors)
        if not 200 <= response.status_code < 300:
            raise error_from_response(response, SERVICE)
        return expect_key(json_object(response, SERVICE), "data", dict, response, SERVICE)

    async def find(self, marker: str) -> Ticket | None:
        check_marker(marker)
        data = await self._graphql(FIND, {"id": issue_id(self.team_id, marker), "line": marker_line(marker)})
        issues = data.get("issues")
        nodes = issues.get("nodes") if isinstance(issues, dict) else None
        for node in nodes if isinstance(nodes, list) else []:
            if isinstance(node, dict) and isinstance(node.get("identifier"), str):
                return _ticket(node)
        return None

    async def create(self, request: TicketRequest) -> Ticket:
        data = await self._graphql(CREATE, {"input": self.create_input(request)})
        payload = data.get("issueCreate")
        issue = payload.get("issue") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or payload.get("success") is not True or not isinstance(issue, dict):
            raise UpstreamError(
                SERVICE, 200, f"{SERVICE} did not create the issue (issueCreate success is not true)", permanent=True
            )
        return _ticket(issue)

    async def status(self, key: str) -> Ticket:
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"not a Linear issue key: {key!r}")
        data = await self._graphql(STATUS, {"id": key.strip()})
        issue = data.get("issue")
        if not isinstance(issue, dict):
            raise UpstreamError(SERVICE, 200, f"{SERVICE} has no issue {key!r}", permanent=True)
        return _ticket(issue)

    async def update(self, key: str, change: TicketChange) -> list[str]:
        """`issueUpdate` with what differs: `stateId` (the team's first state of the wanted type),
        `assigneeId`, `dueDate` (null clears them); nothing when the issue says so already."""
        data = await self._graphql(CURRENT, {"id": key.strip()})
        issue = data.get("issue")
        if not isinstance(issue, dict):
            raise UpstreamError(SERVICE, 200, f"{SERVICE} has no issue {key!r}", permanent=True)
        values: dict[str, Any] = {}
        state = issue.get("state")
        if linear_state(state.get("type") if isinstance(state, dict) else None) != change.state:
            team = issue.get("team") if isinstance(issue.get("team"), dict) else {}
            states = (team.get("states") or {}).get("nodes") if isinstance(team, dict) else None
            wanted = STATE_TYPES[change.state]
            found = sorted(
                (n for n in states or [] if isinstance(n, dict) and n.get("type") == wanted),
                key=lambda n: float(n.get("position") or 0),
            )
            if not found:
                raise UpstreamError(
                    SERVICE, 200, f"{SERVICE}: the team has no {wanted!r} workflow state", permanent=True
                )
            values["stateId"] = found[0]["id"]
        assignee = issue.get("assignee")
        if change.assign and (assignee.get("id") if isinstance(assignee, dict) else None) != change.assignee:
            values["assigneeId"] = change.assignee
        due = change.due_date.isoformat() if change.due_date else None
        if issue.get("dueDate") != due:
            values["dueDate"] = due
        if values:
            result = await self._graphql(UPDATE, {"id": str(issue.get("id") or key), "input": values})
            payload = result.get("issueUpdate")
            if not isinstance(payload, dict) or payload.get("success") is not True:
                raise UpstreamError(SERVICE, 200, f"{SERVICE} did not update issue {key!r}", permanent=True)
        names = {"stateId": "state", "assigneeId": "assignee", "dueDate": "duedate"}
        return sorted(names[name] for name in values)

    def create_input(self, request: TicketRequest) -> dict[str, Any]:
        """The `IssueCreateInput` for `request`."""
        description = request.description.strip()
        line = marker_line(request.marker)
        values: dict[str, Any] = {
            "id": issue_id(self.team_id, request.marker),
            "teamId": self.team_id,
            "title": request.title,
            "description": f"{description}\n\n---\n\n{line}\n" if description else f"{line}\n",
            "priority": PRIORITY_NUMBERS[request.priority],
        }
        if request.due_date is not None:
            values["dueDate"] = request.due_date.isoformat()
        if request.assignee:
            values["assigneeId"] = request.assignee
        return values


def linear_state(state_type: Any) -> TicketState:
    """A workflow state type (postmortem.models.linear_ticket_state, shared with the Linear webhook)."""
    return linear_ticket_state(state_type if isinstance(state_type, str) else None)


def _ticket(issue: dict[str, Any]) -> Ticket:
    state = issue.get("state")
    return Ticket(
        key=str(issue.get("identifier")),
        url=str(issue.get("url") or ""),
        state=linear_state(state.get("type") if isinstance(state, dict) else None),
    )


def graphql_error(response: httpx.Response, errors: list[Any]) -> UpstreamError:
    """The UpstreamError for a GraphQL `errors[]` answer (any HTTP status)."""
    codes: list[str] = []
    types: list[str] = []
    messages: list[str] = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        found = error.get("extensions")
        extensions: dict[str, Any] = found if isinstance(found, dict) else {}
        if isinstance(extensions.get("code"), str):
            codes.append(extensions["code"].upper())
        if isinstance(extensions.get("type"), str):
            types.append(extensions["type"].lower())
        text = extensions.get("userPresentableMessage") or error.get("message")
        if text and str(text) not in messages:
            messages.append(str(text))
    status = response.status_code
    rate_limited = "RATELIMITED" in codes or "ratelimited" in types
    transient = rate_limited or status == 429 or status >= 500 or any(kind in TRANSIENT_TYPES for kind in types)
    retry_after = None
    if rate_limited or status == 429:
        retry_after = (
            retry_after_seconds(httpx.Headers({"retry-after": response.headers["retry-after"]}))
            if "retry-after" in response.headers
            else None
        )
        if retry_after is None:
            retry_after = _reset_wait(response.headers)
    code = codes[0] if codes else (types[0] if types else None)
    return upstream_error(
        response, SERVICE, "; ".join(messages) or code, permanent=not transient, retry_after=retry_after, code=code
    )


def _reset_wait(headers: httpx.Headers) -> float | None:
    """Seconds until the exhausted budget (requests or complexity) resets, from the
    `x-ratelimit-{requests,complexity}-{remaining,reset}` headers; the later reset when unclear."""
    waits: dict[str, float] = {}
    exhausted: list[str] = []
    for budget in ("requests", "complexity"):
        wait = seconds_until_epoch(headers.get(f"x-ratelimit-{budget}-reset"))
        if wait is not None:
            waits[budget] = wait
            if headers.get(f"x-ratelimit-{budget}-remaining", "").strip() in ("0", "-0"):
                exhausted.append(budget)
    chosen = [waits[budget] for budget in exhausted] or list(waits.values())
    return max(chosen) if chosen else None
