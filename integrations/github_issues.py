"""GitHub Issues (REST, API version 2022-11-28) as a TicketClient: action items become issues in one repo.

* create: `POST /repos/{owner}/{repo}/issues` `{title, body, labels, assignees}` → 201 issue object.
  The marker is a hidden line `<!-- postmortem:<marker> -->` at the end of the body; the issue gets
  one label of ours (`label`, "postmortem" unless configured: never a label per item, which would
  fill the repository with labels) and the caller's labels. GitHub creates a missing label on the
  fly for a token with push access; without push access labels and assignees are silently dropped.
  GitHub has no due date or priority: both are written into the body.
* find: first `GET /repos/{owner}/{repo}/issues?labels=<label>&state=all&sort=created&direction=desc`,
  newest first, page by page (at most FIND_PAGES of 100), reading each body for the marker line —
  served from the database, so an issue created a moment ago is found at once (issues from before,
  which also carry a per-item label, carry the line too); then, for issues whose labels were
  dropped, `GET /search/issues?q=repo:{owner}/{repo} is:issue in:body "<marker>"` (the search index
  lags behind writes; GitHub now refuses searches without `is:issue`/`is:pull-request` with 422).
  A hit counts only when its body really holds the marker line.
* status: `GET /repos/{owner}/{repo}/issues/{number}` (following a transferred issue's redirect).
* update: that GET, then `PATCH /repos/{owner}/{repo}/issues/{number}` with what differs
  (`state`/`state_reason`, `assignees`, the body's due-date fact), nothing when nothing does.

Keys are "owner/repo#number" (e.g. "acme/ops#42"): unambiguous whichever repository is configured
later. `status` also takes "#42" or "42" for the configured repository.

Failures: 401 and 404 permanent; 410 (issues disabled, or the issue deleted) permanent; 422
permanent with GitHub's `errors` list in the message; 403/429 with `x-ratelimit-remaining: 0`
(primary limit) transient until `x-ratelimit-reset`; 403/429 with `retry-after` or a "secondary rate
limit" message transient (60 s when GitHub gives no time); any other 403 permanent.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import httpx

from postmortem.integrations.http_errors import error_from_response, json_object, path_segment, retry_after_seconds
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
from postmortem.models import github_ticket_state

SERVICE = "GitHub"
API_VERSION = "2022-11-28"
POSTMORTEM_LABEL = "postmortem"
SECONDARY_LIMIT_WAIT = 60.0  # GitHub: "wait at least one minute" when a secondary limit gives no retry-after
SEARCH_PAGE = 10
LIST_PAGE = 100  # GitHub's largest page
FIND_PAGES = 10  # a lost create is a recent issue: the newest 1,000 of ours are read before searching
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_KEY = re.compile(r"(?:(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+))?#?(?P<number>[1-9][0-9]{0,11})")
_PRIORITY_WORDS = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low"}


def marker_line(marker: str) -> str:
    """The hidden line that carries the marker in an issue body."""
    return f"<!-- postmortem:{marker} -->"


class GitHubIssuesClient:
    def __init__(
        self, api_url: str, token: str, repo: str, http: httpx.AsyncClient, label: str = POSTMORTEM_LABEL
    ) -> None:
        if not _REPO.fullmatch(repo) or any(part in (".", "..") for part in repo.split("/")):
            raise ValueError(f"repo must be 'owner/name', not {repo!r}")
        if not label.strip() or "," in label or len(label) > 50:
            raise ValueError(f"label must be 1–50 characters without commas, not {label!r}")
        self.label = label.strip()
        self._base = api_url.rstrip("/")
        self._http = http
        self.repo = repo
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }

    def _repo_url(self, repo: str | None = None) -> str:
        owner, name = (repo or self.repo).split("/")
        return f"{self._base}/repos/{path_segment(owner)}/{path_segment(name)}"

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await exchange(self._http, SERVICE, method, url, headers=self._headers, **kwargs)
        raise_for_github(response)
        return response

    async def find(self, marker: str) -> Ticket | None:
        check_marker(marker)
        line = marker_line(marker)
        for page in range(1, FIND_PAGES + 1):
            params = {
                "labels": self.label,
                "state": "all",
                "sort": "created",
                "direction": "desc",
                "per_page": str(LIST_PAGE),
                "page": str(page),
            }
            response = await self._call("GET", f"{self._repo_url()}/issues", params=params)
            issues = _issue_list(json_or_none(response))
            for issue in reversed(issues):  # the oldest of this page first: a duplicate never wins
                if line in str(issue.get("body") or ""):
                    return self._ticket(issue)
            if len(json_or_none(response) or []) < LIST_PAGE:
                break
        query = f'repo:{self.repo} is:issue in:body "{marker}"'
        response = await self._call(
            "GET",
            f"{self._base}/search/issues",
            params={"q": query, "sort": "created", "order": "asc", "per_page": str(SEARCH_PAGE)},
        )
        body = json_object(response, SERVICE)
        for issue in _issue_list(body.get("items")):
            if line in str(issue.get("body") or ""):
                return self._ticket(issue)
        return None

    async def create(self, request: TicketRequest) -> Ticket:
        payload: dict[str, Any] = {
            "title": request.title,
            "body": issue_body(request),
            "labels": github_labels(self.label, request.labels),
        }
        if request.assignee:
            payload["assignees"] = [request.assignee]
        response = await self._call("POST", f"{self._repo_url()}/issues", json=payload)
        return self._ticket(_issue(response))

    async def status(self, key: str) -> Ticket:
        repo, number = self.parse_key(key)
        response = await self._call("GET", f"{self._repo_url(repo)}/issues/{number}", follow_redirects=True)
        return self._ticket(_issue(response))

    async def update(self, key: str, change: TicketChange) -> list[str]:
        """`PATCH /repos/{owner}/{repo}/issues/{number}` with only what differs: state (GitHub has no
        "in progress": an open issue is that too; won't do closes as not_planned), the assignee, and
        the due date's fact in the body (GitHub has no due date field)."""
        repo, number = self.parse_key(key)
        url = f"{self._repo_url(repo)}/issues/{number}"
        issue = _issue(await self._call("GET", url, follow_redirects=True))
        payload: dict[str, Any] = {}
        now = github_state(issue)
        want_closed = change.state in ("done", "wont_do")
        if want_closed and (now != change.state):
            payload["state"] = "closed"
            payload["state_reason"] = "completed" if change.state == "done" else "not_planned"
        elif not want_closed and now in ("done", "wont_do"):
            payload["state"], payload["state_reason"] = "open", "reopened"
        logins = [a.get("login") for a in issue.get("assignees") or [] if isinstance(a, dict)]
        wanted = [change.assignee] if change.assignee else []
        if change.assign and logins != wanted:
            payload["assignees"] = wanted
        body = str(issue.get("body") or "")
        dated = with_due_date(body, change.due_date)
        if dated != body:
            payload["body"] = dated
        if payload:
            await self._call("PATCH", url, json=payload)
        return sorted(payload.keys() - {"state_reason"})

    def parse_key(self, key: str) -> tuple[str, int]:
        """("owner/repo", number) from "owner/repo#12", "#12" or "12"; ValueError for anything else."""
        match = _KEY.fullmatch(key.strip()) if isinstance(key, str) else None
        if not match or (match.group("repo") and "#" not in key):
            raise ValueError(f"not a GitHub issue key: {key!r} (expected 'owner/repo#number')")
        repo = match.group("repo") or self.repo
        if any(part in (".", "..") for part in repo.split("/")):
            raise ValueError(f"not a GitHub issue key: {key!r}")
        return repo, int(match.group("number"))

    def _ticket(self, issue: dict[str, Any]) -> Ticket:
        repo = _repo_of(issue) or self.repo
        return Ticket(key=f"{repo}#{issue['number']}", url=str(issue.get("html_url") or ""), state=github_state(issue))


def github_state(issue: dict[str, Any]) -> TicketState:
    """An issue's state (postmortem.models.github_ticket_state, shared with the GitHub webhook)."""
    state, reason = issue.get("state"), issue.get("state_reason")
    return github_ticket_state(state if isinstance(state, str) else None, reason if isinstance(reason, str) else None)


def github_labels(ours: str, labels: tuple[str, ...] | list[str]) -> list[str]:
    """Our one label and the caller's, once each (GitHub labels ignore case)."""
    result: list[str] = []
    for label in (ours, *labels):
        cleaned = label.strip()
        if cleaned and cleaned.lower() not in (seen.lower() for seen in result):  # GitHub labels ignore case
            result.append(cleaned)
    return result


def issue_body(request: TicketRequest) -> str:
    """The description, what GitHub has no field for (due date, priority), and the hidden marker line."""
    facts = [f"**Priority:** {_PRIORITY_WORDS[request.priority]}"]
    if request.due_date is not None:
        facts.insert(0, f"**Due:** {request.due_date.isoformat()}")
    parts = [request.description.strip(), " · ".join(facts), marker_line(request.marker)]
    return "\n\n".join(part for part in parts if part) + "\n"


_DUE_FACT = re.compile(r"\*\*Due:\*\* \d{4}-\d{2}-\d{2}(?: · )?")
_PRIORITY_FACT = re.compile(r"\*\*Priority:\*\* \w+")


def with_due_date(body: str, due: date | None) -> str:
    """The body with its due-date fact (as `issue_body` wrote it) saying `due`: replaced, added before
    the priority fact, or taken out. A body without our facts line is left as it is."""
    fact = f"**Due:** {due.isoformat()} · " if due is not None else ""
    if _DUE_FACT.search(body):
        return _DUE_FACT.sub(lambda _: fact, body, count=1)
    if fact and (found := _PRIORITY_FACT.search(body)):
        return body[: found.start()] + fact + body[found.start() :]
    return body


def _repo_of(issue: dict[str, Any]) -> str | None:
    url = issue.get("repository_url")
    if isinstance(url, str) and "/repos/" in url:
        tail = url.rsplit("/repos/", 1)[1].strip("/")
        if _REPO.fullmatch(tail):
            return tail
    return None


def _issue_list(items: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        return []
    return [
        item
        for item in items
        if isinstance(item, dict) and isinstance(item.get("number"), int) and "pull_request" not in item
    ]


def _issue(response: httpx.Response) -> dict[str, Any]:
    body = json_object(response, SERVICE)
    if not isinstance(body.get("number"), int):
        raise upstream_error(
            response,
            SERVICE,
            "the answer has no issue number",
            permanent=True,
            head=f"{SERVICE} answered {response.status_code} without the expected issue",
        )
    return body


def raise_for_github(response: httpx.Response) -> None:
    """Nothing for 2xx; otherwise the UpstreamError GitHub's status, headers and body stand for."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = json_or_none(response)
    detail = github_detail(body)
    headers = response.headers
    if status in (403, 429):
        if headers.get("x-ratelimit-remaining") == "0":
            wait = (
                retry_after_seconds(httpx.Headers({"retry-after": headers["retry-after"]}))
                if "retry-after" in headers
                else seconds_until_epoch(headers.get("x-ratelimit-reset"))
            )
            raise upstream_error(response, SERVICE, detail, permanent=False, retry_after=wait, code="rate_limited")
        if "retry-after" in headers or "secondary rate limit" in (detail or "").lower():
            wait = None
            if "retry-after" in headers:
                wait = retry_after_seconds(httpx.Headers({"retry-after": headers["retry-after"]}))
            raise upstream_error(
                response,
                SERVICE,
                detail,
                permanent=False,
                retry_after=SECONDARY_LIMIT_WAIT if wait is None else wait,
                code="secondary_rate_limited",
            )
    if detail is not None:
        error = error_from_response(response, SERVICE)  # classification by status, our wording of the body
        raise upstream_error(response, SERVICE, detail, permanent=error.permanent, retry_after=error.retry_after)
    raise error_from_response(response, SERVICE)


def github_detail(body: Any) -> str | None:
    """GitHub's `message` and, for a 422, each entry of its `errors` list."""
    if not isinstance(body, dict):
        return None
    message = body.get("message")
    parts = [str(message)] if isinstance(message, str) and message else []
    details: list[str] = []
    errors = body.get("errors")
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, str) and item:
            details.append(item)
        elif isinstance(item, dict):
            if item.get("message"):
                details.append(str(item["message"]))
                continue
            where = ".".join(str(item[name]) for name in ("resource", "field") if item.get(name))
            text = " ".join(part for part in (where, str(item.get("code") or "")) if part)
            if item.get("value") not in (None, ""):
                text += f" ({item['value']})"
            if text:
                details.append(text)
    if details:
        parts.append("; ".join(details))
    return ": ".join(parts) or None
