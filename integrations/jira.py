"""Jira Cloud REST v3 as a TicketClient: action items become issues in one project.

Wire format (Atlassian's OpenAPI, see tests/fixtures/README.md §5):
* Basic auth `base64(email:api_token)`.
* create: `POST /rest/api/3/issue` `{"fields": {project{key}, issuetype{name}, summary, description
  (Atlassian Document Format), duedate "YYYY-MM-DD", priority{name}, labels, assignee{id}}}`
  → 201 `{"id", "key", "self"}`; 400 `{"errorMessages": [...], "errors": {field: message}}`.
* find: `GET /rest/api/3/search/jql?jql=issue.property[postmortem].marker = "<marker>" OR labels =
  "<marker>"` — the classic `/rest/api/3/search` was removed from Jira Cloud in 2025 (410 Gone,
  CHANGE-2046). It answers `{"issues": [{"key", "fields": {...}}]}`. Jira Data Center has no v3 API.
* status: `GET /rest/api/3/issue/{key}?fields=status,resolution`.
* update: `PUT /rest/api/3/issue/{key}` `{"fields": {assignee, duedate}}` (204) when they differ, and
  for a new state `GET …/{key}/transitions` then `POST …/{key}/transitions` `{"transition": {"id"}}`
  with the first transition into a status of the wanted category (won't do: `fields.resolution`).

The marker travels in an issue entity property (`properties` of the create request: `postmortem` =
`{"marker": …}`, searchable in JQL as `issue.property[postmortem].marker`) and as a last line of the
description; the issue gets one label of ours (POSTMORTEM_TICKETS_LABEL), never a label per item.
Issues from before carry a per-item label: the search still finds those (`OR labels = …`).

Exactly-once against an eventually consistent search (Atlassian: "search and reconcile" — results may
lag writes by seconds; `reconcileIssues` helps only for issue ids one knows, and a lost create's id
is what we do not know): `find(marker, settle=…)` keeps asking for up to `settle` seconds. The caller
asks so only when an earlier attempt may have created the issue (a retry), so a first create costs
nothing; a create lost for longer than the index lag plus `settle` is the one case left.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from postmortem.integrations.http_errors import UpstreamError, expect_key, json_object, path_segment
from postmortem.integrations.http_errors import request as send
from postmortem.integrations.tickets import Ticket, TicketChange, TicketRequest, TicketState, check_marker
from postmortem.models import jira_ticket_state

SERVICE = "Jira"
ISSUE_PATH = "/rest/api/3/issue"
SEARCH_PATH = "/rest/api/3/search/jql"
PRIORITY_NAMES: Mapping[str, str] = {"HIGH": "High", "MEDIUM": "Medium", "LOW": "Low"}
SUMMARY_MAX = 255  # Jira refuses longer summaries (400)
PROPERTY = "postmortem"  # the issue entity property that carries the marker
SETTLE_POLL = 1.0  # seconds between searches while waiting for the index
CATEGORY = {"open": "new", "in_progress": "indeterminate", "done": "done", "wont_do": "done"}
WONT_DO = "Won't Do"


class JiraClient:
    """Creates and follows issues in project `project` through `http`; every failure is an UpstreamError.

    `priority_names` maps our priorities to the site's priority names; None leaves priority out of
    the create request (for projects whose create screen has no priority field: Jira answers 400).
    """

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        project: str,
        http: httpx.AsyncClient,
        issue_type: str = "Task",
        *,
        priority_names: Mapping[str, str] | None = PRIORITY_NAMES,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = http
        self.project = project
        self.issue_type = issue_type
        self.priority_names = priority_names
        credentials = base64.b64encode(f"{email}:{api_token}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}", "Accept": "application/json"}

    def browse_url(self, key: str) -> str:
        return f"{self._base}/browse/{key}"

    async def find(self, marker: str, *, settle: float = 0.0) -> Ticket | None:
        """The oldest issue carrying `marker` (its entity property, or the label issues from before
        carry), in any project the account can see, or None — after asking for up to `settle` seconds
        (the search lags behind a create)."""
        check_marker(marker)
        params = {
            "jql": f'issue.property[{PROPERTY}].marker = "{marker}" OR labels = "{marker}" ORDER BY created ASC',
            "fields": "status,resolution",
            "maxResults": "1",
        }
        deadline = time.monotonic() + settle
        while True:
            response = await send(
                self._http, SERVICE, "GET", f"{self._base}{SEARCH_PATH}", params=params, headers=self._headers
            )
            issues = expect_key(json_object(response, SERVICE), "issues", list, response, SERVICE)
            for issue in issues:
                if isinstance(issue, dict) and isinstance(issue.get("key"), str):
                    return self._ticket(issue)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(min(SETTLE_POLL, max(deadline - time.monotonic(), 0.0)))

    async def create(self, request: TicketRequest) -> Ticket:
        response = await send(
            self._http,
            SERVICE,
            "POST",
            f"{self._base}{ISSUE_PATH}",
            json=self.create_payload(request),
            headers=self._headers,
        )
        body = json_object(response, SERVICE)
        key = expect_key(body, "key", str, response, SERVICE)
        return Ticket(key=key, url=self.browse_url(key), state="open")

    async def status(self, key: str) -> Ticket:
        response = await send(
            self._http,
            SERVICE,
            "GET",
            f"{self._base}{ISSUE_PATH}/{path_segment(key)}",
            params={"fields": "status,resolution"},
            headers=self._headers,
        )
        body = json_object(response, SERVICE)
        expect_key(body, "key", str, response, SERVICE)
        return self._ticket(body)

    async def update(self, key: str, change: TicketChange) -> list[str]:
        """Assignee and due date set when they differ; the state moved by a transition when its
        category differs (a change that came from Jira is no change: nothing is sent)."""
        url = f"{self._base}{ISSUE_PATH}/{path_segment(key)}"
        response = await send(
            self._http,
            SERVICE,
            "GET",
            url,
            params={"fields": "status,resolution,assignee,duedate"},
            headers=self._headers,
        )
        issue = json_object(response, SERVICE)
        fields = _object(issue.get("fields"))
        changed: list[str] = []
        edits: dict[str, Any] = {}
        assignee = _string(_object(fields.get("assignee")).get("accountId"))
        if change.assign and assignee != change.assignee:
            edits["assignee"] = {"id": change.assignee} if change.assignee else None
        due = change.due_date.isoformat() if change.due_date else None
        if _string(fields.get("duedate")) != due:
            edits["duedate"] = due
        if edits:
            await send(self._http, SERVICE, "PUT", url, json={"fields": edits}, headers=self._headers)
            changed += sorted(edits)
        if jira_state(fields) != change.state:
            await self._transition(url, change.state)
            changed.append("state")
        return changed

    async def _transition(self, url: str, state: TicketState) -> None:
        response = await send(self._http, SERVICE, "GET", f"{url}/transitions", headers=self._headers)
        transitions = expect_key(json_object(response, SERVICE), "transitions", list, response, SERVICE)
        wanted = CATEGORY[state]
        candidates = [
            t
            for t in transitions
            if isinstance(t, dict) and _string(_object(_object(t.get("to")).get("statusCategory")).get("key")) == wanted
        ]
        if state == "wont_do":  # a status of that name first (team-managed projects), else done with the resolution
            candidates.sort(key=lambda t: _string(_object(t.get("to")).get("name")) != WONT_DO)
        if not candidates:
            raise UpstreamError(
                SERVICE, 409, f"{SERVICE}: no transition of this issue leads to a {wanted!r} status", permanent=True
            )
        body: dict[str, Any] = {"transition": {"id": str(candidates[0].get("id"))}}
        if state == "wont_do" and _string(_object(candidates[0].get("to")).get("name")) != WONT_DO:
            body["fields"] = {"resolution": {"name": WONT_DO}}
        elif state == "done":
            body["fields"] = {"resolution": {"name": "Done"}}
        await send(self._http, SERVICE, "POST", f"{url}/transitions", json=body, headers=self._headers)

    def create_payload(self, ticket: TicketRequest) -> dict[str, Any]:
        """The body of `POST /rest/api/3/issue` for `ticket`: the marker as an entity property and the
        description's last line, our one label (no label per item)."""
        fields: dict[str, Any] = {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": summary(ticket.title),
            "description": to_adf(f"{ticket.description.rstrip()}\n\n{marker_line(ticket.marker)}"),
            "labels": jira_labels(ticket.labels),
        }
        if ticket.due_date is not None:
            fields["duedate"] = ticket.due_date.isoformat()
        if self.priority_names is not None:
            fields["priority"] = {"name": self.priority_names[ticket.priority]}
        if ticket.assignee:
            fields["assignee"] = {"id": ticket.assignee}
        return {"fields": fields, "properties": [{"key": PROPERTY, "value": {"marker": ticket.marker}}]}

    def _ticket(self, issue: dict[str, Any]) -> Ticket:
        key = str(issue["key"])
        fields = issue.get("fields")
        return Ticket(key=key, url=self.browse_url(key), state=jira_state(fields if isinstance(fields, dict) else {}))


def jira_state(fields: dict[str, Any]) -> TicketState:
    """Our state from an issue's `fields.status` (its statusCategory) and `fields.resolution`,
    mapped by postmortem.models.jira_ticket_state like the Jira webhook's."""
    status = _object(fields.get("status"))
    return jira_ticket_state(
        _string(_object(status.get("statusCategory")).get("key")),
        _string(_object(fields.get("resolution")).get("name")),
        _string(status.get("name")),
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def summary(title: str) -> str:
    """A title as a Jira summary: one line (Jira refuses newlines), at most 255 characters."""
    text = " ".join(title.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def marker_line(marker: str) -> str:
    """The description's last line: the marker where a person reading the issue sees it."""
    return f"postmortem:{marker}"


def jira_labels(labels: tuple[str, ...] | list[str]) -> list[str]:
    """Labels as Jira takes them: whitespace becomes "-" (Jira refuses spaces), no duplicates."""
    result: list[str] = []
    for label in labels:
        cleaned = re.sub(r"\s+", "-", label.strip())
        if cleaned and cleaned not in result:
            result.append(cleaned)
    return result


# --- Markdown → Atlassian Document Format ----------------------------------------------------------

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(["strikethrough"])
_MARKS = {"strong": "strong", "em": "em", "s": "strike"}


def to_adf(markdown: str) -> dict[str, Any]:
    """Our Markdown as an ADF document (Jira v3 refuses plain strings for `description`).

    Paragraphs, headings, bullet and ordered lists (nested), block quotes, code blocks and rules;
    inline bold, italic, strike-through, code and links. Anything else (tables, raw HTML) stays as
    its literal text, so nothing written is ever lost.
    """
    root = SyntaxTreeNode(_MARKDOWN.parse(markdown or ""))
    return {"type": "doc", "version": 1, "content": _blocks(root.children)}


def _blocks(nodes: list[SyntaxTreeNode]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for node in nodes:
        block = _block(node)
        if block is not None:
            blocks.append(block)
    return blocks


def _block(node: SyntaxTreeNode) -> dict[str, Any] | None:
    kind = node.type
    if kind == "paragraph":
        return {"type": "paragraph", "content": _inline_of(node)}
    if kind == "heading":
        return {"type": "heading", "attrs": {"level": int(node.tag[1:])}, "content": _inline_of(node)}
    if kind == "bullet_list":
        return {"type": "bulletList", "content": [_list_item(item) for item in node.children]}
    if kind == "ordered_list":
        start = node.attrs.get("start", 1)
        return {
            "type": "orderedList",
            "attrs": {"order": int(start)},
            "content": [_list_item(item) for item in node.children],
        }
    if kind == "blockquote":
        return {"type": "blockquote", "content": _blocks(node.children) or [{"type": "paragraph", "content": []}]}
    if kind in ("fence", "code_block"):
        text = node.content.rstrip("\n")
        block: dict[str, Any] = {"type": "codeBlock", "content": [{"type": "text", "text": text}] if text else []}
        language = (node.info or "").strip().split(" ")[0] if kind == "fence" else ""
        if language:
            block["attrs"] = {"language": language}
        return block
    if kind == "hr":
        return {"type": "rule"}
    text = node.content.strip() if hasattr(node, "content") else ""
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]} if text else None


def _list_item(item: SyntaxTreeNode) -> dict[str, Any]:
    content = _blocks(item.children)
    if not content or content[0]["type"] not in ("paragraph", "codeBlock"):
        content.insert(0, {"type": "paragraph", "content": []})  # an ADF listItem starts with a paragraph
    return {"type": "listItem", "content": content}


def _inline_of(node: SyntaxTreeNode) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for child in node.children:  # the one `inline` child
        _inline(child.children, [], nodes)
    return _merged(nodes)


def _inline(children: list[SyntaxTreeNode], marks: list[dict[str, Any]], out: list[dict[str, Any]]) -> None:
    for child in children:
        kind = child.type
        if kind == "text":
            _text(child.content, marks, out)
        elif kind == "softbreak":
            _text(" ", marks, out)
        elif kind == "hardbreak":
            out.append({"type": "hardBreak"})
        elif kind == "code_inline":
            # ADF allows `code` next to `link` only
            _text(child.content, [*[mark for mark in marks if mark["type"] == "link"], {"type": "code"}], out)
        elif kind in _MARKS:
            _inline(child.children, [*marks, {"type": _MARKS[kind]}], out)
        elif kind == "link":
            _inline(child.children, [*marks, _link(child.attrs.get("href"))], out)
        elif kind == "image":  # ADF media needs uploads: the alt text, linked to the picture
            alt = "".join(grand.content for grand in child.children if grand.type == "text")
            _text(alt or str(child.attrs.get("src", "")), [*marks, _link(child.attrs.get("src"))], out)
        elif child.children:
            _inline(child.children, marks, out)
        else:
            _text(child.content, marks, out)


def _link(href: object) -> dict[str, Any]:
    return {"type": "link", "attrs": {"href": str(href or "")}}


def _text(text: str, marks: list[dict[str, Any]], out: list[dict[str, Any]]) -> None:
    if not text:
        return  # ADF text nodes must not be empty
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = list(marks)
    out.append(node)


def _merged(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neighbouring text nodes with the same marks as one node (a softbreak is a space in the text)."""
    merged: list[dict[str, Any]] = []
    for node in nodes:
        last = merged[-1] if merged else None
        if (
            last is not None
            and node["type"] == "text"
            and last["type"] == "text"
            and last.get("marks") == node.get("marks")
        ):
            merged[-1] = {**last, "text": last["text"] + node["text"]}
        else:
            merged.append(node)
    return merged
