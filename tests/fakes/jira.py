"""A loopback Jira Cloud REST v3: create an issue, read one, search by JQL label — built from the fixtures.

What it copies from the real one (tests/fixtures/README.md §5, Atlassian's OpenAPI): Basic auth
`base64(email:api_token)`; `POST /rest/api/3/issue` answering 201 `{"id", "key", "self"}` (the
fixture's shape) or 400 `{"errorMessages": [...], "errors": {field: message}}`; a description that
must be an ADF document; labels without spaces; `fields.status.statusCategory` from the real status
categories fixture and `fields.resolution`; `GET /rest/api/3/search/jql` answering `{"issues",
"isLast"}`, while the classic `/rest/api/3/search` answers 410 Gone as Jira Cloud does since 2025.
Its JQL understands only what the client sends: `labels = "<label>"` (optionally `ORDER BY …`).

Outages (`Switchable`, tests/fakes/serve.py), until `heal()`:
* `fail_with(400)`: the fixture's 400 (`{"errorMessages": ["Field 'priority' is required"], "errors":
  {}}`), or `bad_request_body` when set; `fail_with((400, REFUSED_FIELDS))` answers Jira's
  ErrorCollection (Atlassian's OpenAPI, schema ErrorCollection) with both halves filled: the
  fixture's message and the field error this fake gives for an unknown project;
* `fail_with(401)`, `fail_with(403)`, `fail_with(404)`, `fail_with(429)` (with Retry-After),
  `fail_with(500)`: Jira's ErrorCollection with its words for each;
* `path="/rest/api/3/issue"` breaks creating and reading issues, not the search.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app, reset_fake
from tests.fixtures import fixture_json

_CREATED = fixture_json("jira_v3_create_issue_response_201.json")
BAD_REQUEST = fixture_json("jira_v3_create_issue_response_400.json")  # "Field 'priority' is required"
_CATEGORIES = {item["key"]: item for item in fixture_json("jira_statuscategories_response.json")}
STATUS_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done", "undefined": "No Category"}
_STATUS_IDS = {"To Do": "10000", "In Progress": "3", "Done": "10001"}
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
REMOVED = {
    "errorMessages": [
        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
        "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
    ],
    "errors": {},
}
UNAUTHORIZED = {
    "errorMessages": ["You are not authenticated. Authentication required to perform this operation."],
    "errors": {},
}
FORBIDDEN = {"errorMessages": ["You do not have permission to create issues in this project."], "errors": {}}
NOT_FOUND = {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
RATE_LIMITED = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
INTERNAL = {"errorMessages": ["Internal server error"], "errors": {}}
# Both halves of an ErrorCollection: the fixture's message and this fake's own unknown-project error.
REFUSED_FIELDS = {"errorMessages": BAD_REQUEST["errorMessages"], "errors": {"project": "valid project is required"}}
_LABEL_JQL = re.compile(r'^\s*labels\s*=\s*"([^"]*)"\s*(?:ORDER BY .*)?$', re.IGNORECASE)
# issue.property[key].path = "value" OR labels = "value" (what the client sends since #16)
_PROPERTY_JQL = re.compile(
    r'^\s*issue\.property\[([\w.-]+)\]\.(\w+)\s*=\s*"([^"]*)"(?:\s+OR\s+labels\s*=\s*"([^"]*)")?\s*(?:ORDER BY .*)?$',
    re.IGNORECASE,
)
# The transitions of Jira's default workflow, each into a status (Atlassian's GET …/transitions shape).
TRANSITIONS = (
    ("11", "To Do", "new"),
    ("21", "In Progress", "indeterminate"),
    ("31", "Done", "done"),
    ("41", "Won't Do", "done"),
)
RESOLUTIONS = ("Done", "Won't Do", "Duplicate", "Cannot Reproduce")


@dataclass
class FakeJiraIssue:
    id: str
    key: str
    fields: dict[str, Any]  # as the client sent them
    properties: dict[str, Any] = field(default_factory=dict)  # issue entity properties
    category: str = "new"  # statusCategory key: new, indeterminate, done, undefined
    status_name: str = "To Do"
    resolution: str | None = None


@dataclass
class FakeJira(Switchable):
    email: str = "bot@example.com"
    api_token: str = "jira-fake-token"
    projects: tuple[str, ...] = ("OPS",)
    issues: dict[str, FakeJiraIssue] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    created: int = 0  # issues made, crashed answers included
    payloads: list[dict[str, Any]] = field(default_factory=list)  # create bodies that made an issue
    next_number: int = 24  # the fixture's ED-24
    next_id: int = 10000
    # failure injection
    fail_next: list[int] = field(default_factory=list)  # statuses to answer next, in order
    bad_request_body: dict[str, Any] | None = None  # the body of an injected 400 (default: the fixture)
    retry_after: str | None = "30"  # Retry-After on a 429
    crash_after_create: bool = False  # make the issue, then answer 500 as if the answer got lost
    # Jira's search is eventually consistent: a new issue stays out of it for this many searches
    search_lag: int = 0
    unindexed: dict[str, int] = field(default_factory=dict)  # key → searches it still misses
    edits: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (key, "edit"/"transition", body)
    epoch: int = 0
    outage: Outage | None = None  # fail_with(...) / heal(): see the module docstring
    refused: int = 0  # requests the outage answered

    def reset(self) -> None:
        reset_fake(self)

    def add_issue(self, key: str, labels: list[str], category: str = "new", **fields: Any) -> FakeJiraIssue:
        """An issue that exists before the test's client runs (made by someone, or by an earlier try)."""
        self.next_id += 1
        issue = FakeJiraIssue(id=str(self.next_id), key=key, fields={"labels": labels, "summary": key, **fields})
        self.issues[key] = issue
        self.transition(key, category)
        return issue

    def transition(
        self, key: str, category: str, status_name: str | None = None, resolution: str | None = None
    ) -> None:
        """Move an issue as a person would: into a status of `category`, maybe with a resolution."""
        issue = self.issues[key]
        issue.category = category
        issue.status_name = status_name or STATUS_NAMES.get(category, "No Category")
        issue.resolution = resolution

    def start(self, key: str) -> None:
        self.transition(key, "indeterminate")

    def close(self, key: str, resolution: str | None = "Done", status_name: str | None = None) -> None:
        self.transition(key, "done", status_name=status_name, resolution=resolution)

    def reopen(self, key: str) -> None:
        self.transition(key, "new")

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _failure(state: FakeJira, status: int) -> Response:
    if status == 400:
        return _error(400, state.bad_request_body or BAD_REQUEST)
    if status == 401:
        return _error(401, UNAUTHORIZED)
    if status == 403:
        return _error(403, FORBIDDEN)
    if status == 404:
        return _error(404, NOT_FOUND)
    if status == 429:
        return _error(429, RATE_LIMITED, {"retry-after": state.retry_after} if state.retry_after else None)
    return _error(status, INTERNAL)


def _validate(state: FakeJira, fields: Any) -> dict[str, str]:
    if not isinstance(fields, dict):
        return {"fields": "fields is required"}
    errors: dict[str, str] = {}
    project = fields.get("project")
    if not isinstance(project, dict) or project.get("key") not in state.projects:
        errors["project"] = "valid project is required"
    issuetype = fields.get("issuetype")
    if not isinstance(issuetype, dict) or not (issuetype.get("name") or issuetype.get("id")):
        errors["issuetype"] = "valid issue type is required"
    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    elif len(summary) > 255 or "\n" in summary:
        errors["summary"] = "Summary must be less than 255 characters and one line."
    description = fields.get("description")
    if description is not None and not (
        isinstance(description, dict) and description.get("type") == "doc" and description.get("version") == 1
    ):
        errors["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    priority = fields.get("priority")
    if priority is not None and (not isinstance(priority, dict) or priority.get("name") not in PRIORITIES):
        errors["priority"] = "Specify the Priority (name) in the string format"
    for label in fields.get("labels") or []:
        if not isinstance(label, str) or " " in label:
            errors["labels"] = f"The label '{label}' contains spaces which is invalid."
    duedate = fields.get("duedate")
    if duedate is not None and not (isinstance(duedate, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", duedate)):
        errors["duedate"] = "Error parsing date string: " + str(duedate)
    return errors


def _fields_view(issue: FakeJiraIssue, wanted: str | None) -> dict[str, Any]:
    everything: dict[str, Any] = {
        **issue.fields,
        "status": {
            "self": f"https://your-domain.atlassian.net/rest/api/3/status/{issue.status_name.replace(' ', '')}",
            "name": issue.status_name,
            "id": _STATUS_IDS.get(issue.status_name, "10100"),
            "statusCategory": _CATEGORIES[issue.category],
        },
        "resolution": {"name": issue.resolution, "id": "10000"} if issue.resolution else None,
    }
    assignee = issue.fields.get("assignee")
    if isinstance(assignee, dict) and "id" in assignee:  # created as {"id"}, read back as a user
        everything["assignee"] = {"accountId": assignee["id"], "accountType": "atlassian"}
    everything.setdefault("assignee", None)
    everything.setdefault("duedate", None)
    if not wanted or wanted in ("*all", "*navigable"):
        return everything
    names = [name.strip() for name in wanted.split(",")]
    return {name: everything.get(name) for name in names}


def jira_app(state: FakeJira) -> FastAPI:
    app = fake_app(
        state,
        authorized=lambda request: request.headers.get("authorization") == state.basic(),
        unauthorized=lambda: _error(401, UNAUTHORIZED),
        failure=lambda status: _failure(state, status),
    )

    def issue_json(request: Request, issue: FakeJiraIssue, fields: str | None) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{base}/rest/api/3/issue/{issue.id}",
            "fields": _fields_view(issue, fields),
        }

    @app.post("/rest/api/3/issue")
    async def create(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, {"errorMessages": ["Unexpected character in the request body"], "errors": {}})
        fields = body.get("fields") if isinstance(body, dict) else None
        errors = _validate(state, fields)
        if errors:
            return _error(400, {"errorMessages": [], "errors": errors})
        assert isinstance(fields, dict)
        state.next_id += 1
        key = f"{fields['project']['key']}-{state.next_number}"
        state.next_number += 1
        properties = body.get("properties") or []
        if not isinstance(properties, list) or not all(
            isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p for p in properties
        ):
            return _error(400, {"errorMessages": [], "errors": {"properties": "Entity property is malformed."}})
        issue = FakeJiraIssue(
            id=str(state.next_id), key=key, fields=fields, properties={p["key"]: p["value"] for p in properties}
        )
        state.issues[key] = issue
        if state.search_lag:
            state.unindexed[key] = state.search_lag
        state.created += 1
        state.payloads.append(body)
        if state.crash_after_create:
            return _error(500, INTERNAL)
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {**_CREATED, "id": issue.id, "key": key, "self": f"{base}/rest/api/3/issue/{issue.id}"}, status_code=201
        )

    @app.get("/rest/api/3/issue/{key}")
    async def get_issue(key: str, request: Request) -> Response:
        issue = state.issues.get(key) or next((item for item in state.issues.values() if item.id == key), None)
        if issue is None:
            return _error(404, NOT_FOUND)
        return JSONResponse(issue_json(request, issue, request.query_params.get("fields")))

    @app.get("/rest/api/3/search/jql")
    async def search(request: Request) -> Response:
        jql = request.query_params.get("jql", "")
        by_label, by_property = _LABEL_JQL.match(jql), _PROPERTY_JQL.match(jql)
        if by_label:
            label = by_label.group(1)
            found = [issue for issue in state.issues.values() if label in (issue.fields.get("labels") or [])]
        elif by_property:
            key, path, value, label = by_property.groups()
            found = [
                issue
                for issue in state.issues.values()
                if (isinstance(issue.properties.get(key), dict) and issue.properties[key].get(path) == value)
                or (label is not None and label in (issue.fields.get("labels") or []))
            ]
        else:
            return _error(400, {"errorMessages": [f"The fake cannot parse the JQL: {jql}"], "errors": {}})
        visible = []
        for issue in found:
            if state.unindexed.get(issue.key, 0) > 0:  # not in the index yet
                state.unindexed[issue.key] -= 1
                continue
            visible.append(issue)
        found = visible
        limit = int(request.query_params.get("maxResults", "50"))
        fields = request.query_params.get("fields")
        return JSONResponse(
            {"issues": [issue_json(request, issue, fields) for issue in found[:limit]], "isLast": len(found) <= limit}
        )

    def find_issue(key: str) -> FakeJiraIssue | None:
        return state.issues.get(key) or next((item for item in state.issues.values() if item.id == key), None)

    @app.put("/rest/api/3/issue/{key}")
    async def edit_issue(key: str, request: Request) -> Response:
        """Edit issue: `{"fields": {...}}`, 204; assignee `{"id"}` or null, duedate "YYYY-MM-DD" or null."""
        issue = find_issue(key)
        if issue is None:
            return _error(404, NOT_FOUND)
        body = await request.json()
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return _error(400, {"errorMessages": ["fields is required"], "errors": {}})
        due = fields.get("duedate", "")
        if due not in ("", None) and not (isinstance(due, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", due)):
            return _error(400, {"errorMessages": [], "errors": {"duedate": f"Error parsing date string: {due}"}})
        state.edits.append((issue.key, "edit", fields))
        for name, value in fields.items():
            if name == "assignee":
                issue.fields["assignee"] = {"accountId": value["id"]} if isinstance(value, dict) else None
            else:
                issue.fields[name] = value
        return Response(status_code=204)

    @app.get("/rest/api/3/issue/{key}/transitions")
    async def transitions(key: str) -> Response:
        if find_issue(key) is None:
            return _error(404, NOT_FOUND)
        return JSONResponse(
            {
                "expand": "transitions",
                "transitions": [
                    {
                        "id": tid,
                        "name": name,
                        "to": {"name": name, "id": _STATUS_IDS.get(name, "10100"), "statusCategory": _CATEGORIES[cat]},
                        "hasScreen": False,
                        "isAvailable": True,
                    }
                    for tid, name, cat in TRANSITIONS
                ],
            }
        )

    @app.post("/rest/api/3/issue/{key}/transitions")
    async def transition(key: str, request: Request) -> Response:
        """Transition issue: `{"transition": {"id"}, "fields": {"resolution": {"name"}}}`, 204."""
        issue = find_issue(key)
        if issue is None:
            return _error(404, NOT_FOUND)
        body = await request.json()
        wanted = str(((body or {}).get("transition") or {}).get("id"))
        chosen = next((t for t in TRANSITIONS if t[0] == wanted), None)
        if chosen is None:
            return _error(
                400, {"errorMessages": [f"Transition id '{wanted}' is not valid for this issue."], "errors": {}}
            )
        resolution = (((body or {}).get("fields") or {}).get("resolution") or {}).get("name")
        if resolution is not None and resolution not in RESOLUTIONS:
            return _error(400, {"errorMessages": [], "errors": {"resolution": "Resolution is invalid."}})
        state.edits.append((issue.key, "transition", body))
        _, name, category = chosen
        state.transition(issue.key, category, status_name=name, resolution=resolution if category == "done" else None)
        return Response(status_code=204)

    @app.api_route("/rest/api/3/search", methods=["GET", "POST"])
    async def removed() -> Response:
        return _error(410, REMOVED)

    return app
