"""A loopback GitHub REST API (issues of one repository, issue search) built from the recorded fixture.

What it copies from the real one (tests/fixtures/README.md §5, octokit/fixtures recording): issue
objects shaped like the recorded 201 answer; `Authorization: Bearer|token <token>`; labels that do
not exist yet are created on the fly (with push access; without it labels and assignees are silently
dropped); `state`/`state_reason` ("completed", "not_planned", "duplicate", "reopened");
`GET /repos/{o}/{r}/issues?labels=&state=&direction=&per_page=&page=` (default state "open",
newest first, 30 a page, pages linked by a `Link` header as GitHub does); `GET /search/issues` answering
`{"total_count", "incomplete_results", "items"}` and refusing, with 422, a query without `is:issue`
or `is:pull-request`; errors as `{"message", "documentation_url", "status"}` (422 adds `errors`);
primary rate limit as 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds);
secondary rate limit as 403 with `retry-after`. Its search understands `repo:`, `is:issue`, `in:body`
and one quoted phrase, matched as a substring of the body.

Outages (`Switchable`, tests/fakes/serve.py), until `heal()`:
* `fail_with(410)`: `{"message": "Issues are disabled for this repo", …}` (GitHub: "410 Gone" when
  issues are disabled in the repository);
* `fail_with(422)`: "Validation Failed" with `errors: [{resource, field, code, value}]` (an assignee
  who cannot be assigned); `fail_with((422, VALIDATION_FAILED_RECORDED))` answers the 422 recorded
  by octokit/fixtures (github_validation_failed_422_recorded.json) byte for byte in content;
* `fail_with(401)`, `fail_with(403)`, `fail_with(404)`, `fail_with("rate_limit")`,
  `fail_with("secondary_rate_limit")`, `fail_with(500)`: as `fail_next` answers them;
* `path="/repos/acme/ops/issues"` narrows the outage to one prefix.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app, reset_fake
from tests.fixtures import fixture_json

_RECORDED = fixture_json("github_create_issue_add_labels_recorded.json")
_ISSUE = _RECORDED[0]["response"]
# The body of a real 422 (POST /repos/…/labels with an invalid color), recorded by octokit/fixtures.
VALIDATION_FAILED_RECORDED = fixture_json("github_validation_failed_422_recorded.json")[0]["response"]
_LABEL = _RECORDED[1]["response"][0]
API = "https://api.github.com"
WEB = "https://github.com"
DOCS = "https://docs.github.com/rest"

BAD_CREDENTIALS = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
NOT_FOUND = {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
ISSUES_DISABLED = {"message": "Issues are disabled for this repo", "documentation_url": DOCS, "status": "410"}
FORBIDDEN = {"message": "Resource not accessible by integration", "documentation_url": DOCS, "status": "403"}
RATE_LIMITED = {
    "message": "API rate limit exceeded for installation ID 1000.",
    "documentation_url": DOCS,
    "status": "403",
}
SECONDARY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    "documentation_url": DOCS,
    "status": "403",
}
NEEDS_IS = {
    "message": "Query must include 'is:issue' or 'is:pull-request'",
    "documentation_url": f"{DOCS}/search/search#search-issues-and-pull-requests",
    "status": "422",
}
INTERNAL = {"message": "Server Error", "status": "500"}


def validation_failed(field_name: str, value: Any, code: str = "invalid") -> dict[str, Any]:
    return {
        "message": "Validation Failed",
        "errors": [{"value": value, "resource": "Issue", "field": field_name, "code": code}],
        "documentation_url": f"{DOCS}/issues/issues#create-an-issue",
        "status": "422",
    }


@dataclass
class FakeGitHub(Switchable):
    token: str = "ghp-fake-token"
    repo: str = "acme/ops"
    collaborators: tuple[str, ...] = ("octocat", "hubot")  # who may be assigned
    push_access: bool = True  # without it, labels and assignees are silently dropped
    issues_enabled: bool = True  # else every issues call answers 410
    search_lag: bool = False  # new issues stay out of the search index until index() is called
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-case name → label
    indexed: set[int] = field(default_factory=set)  # issue numbers the search index knows
    requests: list[Recorded] = field(default_factory=list)
    created: int = 0  # issues made, crashed answers included
    payloads: list[dict[str, Any]] = field(default_factory=list)  # create bodies that made an issue
    edits: list[dict[str, Any]] = field(default_factory=list)  # PATCH bodies of issues, in order
    next_number: int = 1
    # failure injection: an int answers that status; "rate_limit" is a primary-limit 403 (remaining 0),
    # "secondary_rate_limit" a 403 with retry-after, "secondary_no_retry_after" one without
    fail_next: list[int | str] = field(default_factory=list)
    ratelimit_reset_in: int = 40  # seconds from now in x-ratelimit-reset on a primary-limit 403
    retry_after: str = "60"  # on a secondary-limit 403
    crash_after_create: bool = False  # make the issue, then answer 500 as if the answer got lost
    epoch: int = 0
    outage: Outage | None = None  # fail_with(...) / heal(): see the module docstring
    refused: int = 0  # requests the outage answered

    def reset(self) -> None:
        reset_fake(self)

    def add_issue(
        self,
        title: str,
        body: str | None = None,
        labels: tuple[str, ...] = (),
        state: str = "open",
        state_reason: str | None = None,
    ) -> dict[str, Any]:
        """An issue that exists before the test's client runs."""
        issue = self._make(title, body, list(labels), [])
        if state == "closed":
            self.close(issue["number"], state_reason or "completed")
        return issue

    def close(self, number: int, reason: str = "completed") -> None:
        issue = self.issues[number]
        issue.update(state="closed", state_reason=reason, closed_at="2024-05-02T10:00:00Z")

    def reopen(self, number: int) -> None:
        self.issues[number].update(state="open", state_reason="reopened", closed_at=None)

    def index(self) -> None:
        """The search index catches up."""
        self.indexed = set(self.issues)

    def _label(self, name: str) -> dict[str, Any]:
        found = self.labels.get(name.lower())
        if found is None:
            found = {
                **_LABEL,
                "id": 2000 + len(self.labels),
                "name": name,
                "url": f"{API}/repos/{self.repo}/labels/{name}",
            }
            self.labels[name.lower()] = found
        return found

    def _make(self, title: str, body: str | None, labels: list[str], assignees: list[str]) -> dict[str, Any]:
        number = self.next_number
        self.next_number += 1
        issue = copy.deepcopy(_ISSUE)
        api = f"{API}/repos/{self.repo}/issues/{number}"
        issue.update(
            url=api,
            repository_url=f"{API}/repos/{self.repo}",
            labels_url=f"{api}/labels{{/name}}",
            comments_url=f"{api}/comments",
            events_url=f"{api}/events",
            timeline_url=f"{api}/timeline",
            html_url=f"{WEB}/{self.repo}/issues/{number}",
            id=1000 + number,
            number=number,
            title=title,
            body=body,
            labels=[self._label(name) for name in labels],
            comments=0,
            assignees=[{**_ISSUE["user"], "login": login} for login in assignees],
            assignee={**_ISSUE["user"], "login": assignees[0]} if assignees else None,
        )
        self.issues[number] = issue
        if not self.search_lag:
            self.indexed.add(number)
        return issue


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _rate_headers(remaining: int, reset: int | None = None) -> dict[str, str]:
    return {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(reset if reset is not None else int(time.time()) + 3600),
        "x-ratelimit-used": str(5000 - remaining),
        "x-ratelimit-resource": "core",
    }


def _failure(state: FakeGitHub, kind: int | str) -> Response:
    if kind == "rate_limit":
        return _error(403, RATE_LIMITED, _rate_headers(0, int(time.time()) + state.ratelimit_reset_in))
    if kind == "secondary_rate_limit":
        return _error(403, SECONDARY, {**_rate_headers(4000), "retry-after": state.retry_after})
    if kind == "secondary_no_retry_after":
        return _error(403, SECONDARY, _rate_headers(4000))
    if kind == 401:
        return _error(401, BAD_CREDENTIALS)
    if kind == 403:
        return _error(403, FORBIDDEN)
    if kind == 404:
        return _error(404, NOT_FOUND)
    if kind == 410:
        return _error(410, ISSUES_DISABLED)
    if kind == 422:
        return _error(422, validation_failed("assignees", "nobody"))
    if kind == 429:
        return _error(429, SECONDARY, {"retry-after": state.retry_after})
    assert isinstance(kind, int)
    return _error(kind, INTERNAL)


_PHRASE = re.compile(r'"([^"]*)"')


def github_app(state: FakeGitHub) -> FastAPI:
    app = fake_app(
        state,
        authorized=lambda request: (
            request.headers.get("authorization") in (f"Bearer {state.token}", f"token {state.token}")
        ),
        unauthorized=lambda: _error(401, BAD_CREDENTIALS),
        failure=lambda kind: _failure(state, kind),
        headers=lambda: _rate_headers(4999),
    )

    def repo_ok(owner: str, name: str) -> bool:
        return f"{owner}/{name}" == state.repo

    @app.post("/repos/{owner}/{name}/issues")
    async def create(owner: str, name: str, request: Request) -> Response:
        if not repo_ok(owner, name):
            return _error(404, NOT_FOUND)
        if not state.issues_enabled:
            return _error(410, ISSUES_DISABLED)
        body = await request.json()
        title = body.get("title") if isinstance(body, dict) else None
        if not isinstance(title, str) or not title:
            return _error(422, validation_failed("title", title, "missing_field"))
        labels = [str(label) for label in body.get("labels") or []]
        assignees = [str(login) for login in body.get("assignees") or []]
        if not state.push_access:
            labels, assignees = [], []
        for login in assignees:
            if login not in state.collaborators:
                return _error(422, validation_failed("assignees", login))
        for label in labels:
            if len(label) > 50:
                return _error(422, validation_failed("name", label, "too_long"))
        issue = state._make(title, body.get("body"), labels, assignees)
        state.created += 1
        state.payloads.append(body)
        if state.crash_after_create:
            return _error(500, INTERNAL)
        return JSONResponse(issue, status_code=201, headers={"location": issue["url"]})

    @app.get("/repos/{owner}/{name}/issues")
    async def list_issues(owner: str, name: str, request: Request) -> Response:
        if not repo_ok(owner, name):
            return _error(404, NOT_FOUND)
        if not state.issues_enabled:
            return _error(410, ISSUES_DISABLED)
        params = request.query_params
        wanted = {label.strip().lower() for label in params.get("labels", "").split(",") if label.strip()}
        which = params.get("state", "open")
        found = [
            issue
            for issue in state.issues.values()
            if (which == "all" or issue["state"] == which)
            and wanted <= {label["name"].lower() for label in issue["labels"]}
        ]
        found.sort(key=lambda issue: issue["number"], reverse=params.get("direction", "desc") == "desc")
        per_page, page = int(params.get("per_page", "30")), int(params.get("page", "1"))
        self_url = f"{API}/repos/{state.repo}/issues"
        last = max(1, -(-len(found) // per_page))
        links = [f'<{self_url}?page={page + 1}>; rel="next"'] if page < last else []
        headers = {"link": ", ".join([*links, f'<{self_url}?page={last}>; rel="last"'])}
        return JSONResponse(found[(page - 1) * per_page : page * per_page], headers=headers)

    @app.get("/repos/{owner}/{name}/issues/{number}")
    async def get_issue(owner: str, name: str, number: int) -> Response:
        if not repo_ok(owner, name):
            return _error(404, NOT_FOUND)
        if not state.issues_enabled:
            return _error(410, ISSUES_DISABLED)
        issue = state.issues.get(number)
        return JSONResponse(issue) if issue else _error(404, NOT_FOUND)

    @app.patch("/repos/{owner}/{name}/issues/{number}")
    async def edit_issue(owner: str, name: str, number: int, request: Request) -> Response:
        """GitHub's "Update an issue": title, body, state ("open"/"closed"), state_reason ("completed",
        "not_planned", "reopened"), assignees (collaborators only, 422 otherwise); 200 with the issue."""
        if not repo_ok(owner, name):
            return _error(404, NOT_FOUND)
        if not state.issues_enabled:
            return _error(410, ISSUES_DISABLED)
        issue = state.issues.get(number)
        if issue is None:
            return _error(404, NOT_FOUND)
        body = await request.json()
        if not isinstance(body, dict):
            return _error(400, {"message": "Problems parsing JSON"})
        if "state" in body and body["state"] not in ("open", "closed"):
            return _error(422, validation_failed("state", body["state"]))
        reason = body.get("state_reason")
        if reason not in (None, "completed", "not_planned", "reopened"):
            return _error(422, validation_failed("state_reason", reason))
        assignees = body.get("assignees")
        if assignees is not None:
            for login in assignees:
                if login not in state.collaborators:
                    return _error(422, validation_failed("assignees", login))
        state.edits.append(body)
        if "title" in body:
            issue["title"] = body["title"]
        if "body" in body:
            issue["body"] = body["body"]
        if body.get("state") == "closed":
            state.close(number, reason or "completed")
        elif body.get("state") == "open":
            state.reopen(number)
        if assignees is not None and state.push_access:
            issue["assignees"] = [{**_ISSUE["user"], "login": login} for login in assignees]
            issue["assignee"] = issue["assignees"][0] if assignees else None
        return JSONResponse(issue)

    @app.get("/search/issues")
    async def search(request: Request) -> Response:
        query = request.query_params.get("q", "")
        words = _PHRASE.sub(" ", query).split()
        if "is:issue" not in words and "is:pull-request" not in words and "is:pr" not in words:
            return _error(422, NEEDS_IS)
        repos = [word[5:] for word in words if word.startswith("repo:")]
        phrases = _PHRASE.findall(query)
        items = [
            issue
            for number, issue in sorted(state.issues.items())
            if number in state.indexed
            and all(repo == state.repo for repo in repos)
            and all(phrase in (issue.get("body") or "") + " " + issue["title"] for phrase in phrases)
        ]
        if request.query_params.get("order", "desc") == "desc":
            items.reverse()
        limit = int(request.query_params.get("per_page", "30"))
        return JSONResponse(
            {
                "total_count": len(items),
                "incomplete_results": False,
                "items": [{**item, "score": 1.0} for item in items[:limit]],
            }
        )

    return app
