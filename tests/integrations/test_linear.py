"""LinearClient against the loopback Linear: the GraphQL requests, find by id or marker line, states, errors[]."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import pytest_asyncio

from postmortem.integrations import linear
from postmortem.integrations.linear import LinearClient, issue_id, linear_state, marker_line
from postmortem.integrations.tickets import Ticket, TicketClient, TicketRequest
from tests.fakes.linear import FakeLinear, linear_app
from tests.fakes.serve import loopback_client, serve_app
from tests.integrations.support import failure

MARKER = "pm-abc123-item-9f2e"
DESCRIPTION = "Roll back the **deploy** when the error budget burns.\n\n- add an alert\n"


def ticket_request(**overrides: Any) -> TicketRequest:
    values: dict[str, Any] = dict(
        marker=MARKER,
        title="Alert on API error budget burn",
        description=DESCRIPTION,
        due_date=date(2024, 6, 1),
        priority="HIGH",
        assignee="user-1",
        labels=("ignored",),
    )
    values.update(overrides)
    return TicketRequest(**values)


@dataclass
class Env:
    state: FakeLinear
    base: str
    http: httpx.AsyncClient

    def client(self, api_key: str | None = None, team_id: str | None = None) -> LinearClient:
        return LinearClient(
            f"{self.base}/graphql", api_key or self.state.api_key, team_id or self.state.team_id, self.http
        )

    def sent(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.state.requests[index].body)

    def our_id(self, marker: str = MARKER) -> str:
        return issue_id(self.state.team_id, marker)


@pytest_asyncio.fixture(scope="module")
async def linear_server() -> AsyncIterator[tuple[FakeLinear, str]]:
    state = FakeLinear()
    async with serve_app(linear_app(state)) as base:
        yield state, base


@pytest_asyncio.fixture
async def lin(linear_server: tuple[FakeLinear, str]) -> AsyncIterator[Env]:
    state, base = linear_server
    state.reset()
    async with loopback_client() as http:
        yield Env(state, base, http)


# the create request -----------------------------------------------------------------------------


async def test_create_sends_issue_create_with_our_fields(lin: Env) -> None:
    ticket = await lin.client().create(ticket_request())
    assert ticket == Ticket(key="ENG-1", url="https://linear.app/acme/issue/eng-1/item-1", state="open")
    sent = lin.state.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/graphql")
    assert sent.headers["authorization"] == "lin_api_fake"  # a personal key goes without "Bearer"
    assert sent.headers["content-type"] == "application/json"
    body = lin.sent()
    assert body["query"] == linear.CREATE
    assert "issueCreate(input: $input)" in body["query"]
    assert body["variables"] == {
        "input": {
            "id": lin.our_id(),
            "teamId": lin.state.team_id,
            "title": "Alert on API error budget burn",
            "description": DESCRIPTION.strip() + "\n\n---\n\n`postmortem:pm-abc123-item-9f2e`\n",
            "priority": 2,
            "dueDate": "2024-06-01",
            "assigneeId": "user-1",
        }
    }
    assert lin.state.created == 1


@pytest.mark.parametrize(("ours", "number"), [("HIGH", 2), ("MEDIUM", 3), ("LOW", 4)])
async def test_priority_numbers(lin: Env, ours: str, number: int) -> None:
    await lin.client().create(ticket_request(priority=ours))
    assert lin.state.inputs[-1]["priority"] == number


async def test_optional_fields_are_left_out(lin: Env) -> None:
    await lin.client().create(ticket_request(due_date=None, assignee=None, description="  "))
    values = lin.state.inputs[-1]
    assert set(values) == {"id", "teamId", "title", "description", "priority"}
    assert values["description"] == "`postmortem:pm-abc123-item-9f2e`\n"


def test_the_issue_id_is_a_stable_v4_uuid_per_team_and_marker() -> None:
    first = uuid.UUID(issue_id("team-a", MARKER))
    assert (first.version, first.variant) == (4, uuid.RFC_4122)
    assert issue_id("team-a", MARKER) == str(first)
    assert issue_id("team-b", MARKER) != str(first)
    assert issue_id("team-a", MARKER + "0") != str(first)


# find before create -----------------------------------------------------------------------------


async def test_find_by_the_issue_id(lin: Env) -> None:
    lin.state.add_issue("someone rewrote the description", state_type="started", issue_id=lin.our_id())
    assert await lin.client().find(MARKER) == Ticket(
        key="ENG-1", url="https://linear.app/acme/issue/eng-1/item-1", state="in_progress"
    )
    body = lin.sent()
    assert body["query"] == linear.FIND
    assert body["variables"] == {"id": lin.our_id(), "line": "`postmortem:pm-abc123-item-9f2e`"}


async def test_find_by_the_marker_line(lin: Env) -> None:
    """An issue made under another team id (configuration changed) is still found by its description."""
    lin.state.add_issue(f"text\n\n---\n\n{marker_line(MARKER)}\n")
    found = await lin.client().find(MARKER)
    assert found is not None and found.key == "ENG-1"


async def test_a_longer_marker_is_not_ours(lin: Env) -> None:
    lin.state.add_issue(f"{marker_line(MARKER + '0')}\n")
    lin.state.add_issue(f"see {MARKER} in the post-mortem")
    assert await lin.client().find(MARKER) is None


async def test_archived_issues_are_found(lin: Env) -> None:
    await lin.client().create(ticket_request())
    lin.state.move("ENG-1", "completed")
    lin.state.archive("ENG-1")
    found = await lin.client().find(MARKER)
    assert found is not None and found.state == "done"
    assert "includeArchived: true" in lin.sent()["query"]


async def test_find_then_create_makes_one_issue(lin: Env) -> None:
    client = lin.client()
    for _ in range(3):
        if await client.find(MARKER) is None:
            await client.create(ticket_request())
    assert lin.state.created == 1


async def test_a_lost_create_is_found_and_cannot_be_repeated(lin: Env) -> None:
    lin.state.crash_after_create = True
    client = lin.client()
    error = await failure(client.create(ticket_request()))
    assert (error.status, error.permanent) == (502, False)
    lin.state.crash_after_create = False
    assert (await client.find(MARKER)) == Ticket(
        key="ENG-1", url="https://linear.app/acme/issue/eng-1/item-1", state="open"
    )
    again = await failure(client.create(ticket_request()))  # even without find: the same id is refused
    assert again.permanent is True and "already exists" in again.message
    assert lin.state.created == 1


async def test_a_bad_marker_is_refused_without_a_request(lin: Env) -> None:
    for marker in ("", "a`b", "x" * 51):
        with pytest.raises(ValueError):
            await lin.client().find(marker)
    assert lin.state.requests == []


# status -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state_type", "expected"),
    [
        ("triage", "open"),
        ("backlog", "open"),
        ("unstarted", "open"),
        ("started", "in_progress"),
        ("completed", "done"),
        ("canceled", "wont_do"),
        ("duplicate", "wont_do"),
        (None, "open"),
    ],
)
def test_state_mapping(state_type: str | None, expected: str) -> None:
    assert linear_state(state_type) == expected


async def test_status_follows_the_issue(lin: Env) -> None:
    client = lin.client()
    ticket = await client.create(ticket_request())
    for state_type, expected in (("started", "in_progress"), ("canceled", "wont_do"), ("completed", "done")):
        lin.state.move(ticket.key, state_type)
        assert (await client.status(ticket.key)).state == expected
    body = lin.sent()
    assert body == {"query": linear.STATUS, "variables": {"id": "ENG-1"}}
    assert (await client.status(lin.our_id())).key == "ENG-1"  # the UUID works as well


async def test_unknown_issue_is_permanent(lin: Env) -> None:
    error = await failure(lin.client().status("ENG-404"))
    assert (error.status, error.permanent, error.code) == (200, True, "INVALID_INPUT")
    assert str(error) == "Linear answered 200 OK: Entity not found: Issue (POST /graphql)"
    with pytest.raises(ValueError):
        await lin.client().status(" ")


# failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("http_status", [400, 200])
async def test_ratelimited_is_transient_under_any_status(lin: Env, http_status: int) -> None:
    lin.state.fail_next = ["RATELIMITED"]
    lin.state.error_status = http_status
    error = await failure(lin.client().find(MARKER))
    assert (error.status, error.permanent, error.code) == (http_status, False, "RATELIMITED")
    assert error.retry_after is not None and 43 <= error.retry_after <= 45  # x-ratelimit-requests-reset (ms)
    assert "You have exceeded the API rate limit." in error.message


async def test_ratelimited_prefers_retry_after(lin: Env) -> None:
    lin.state.fail_next = ["RATELIMITED"]
    lin.state.retry_after = "12"
    error = await failure(lin.client().create(ticket_request()))
    assert (error.permanent, error.retry_after) == (False, 12.0)


async def test_http_429_is_transient(lin: Env) -> None:
    lin.state.fail_next = [429]
    error = await failure(lin.client().status("ENG-1"))
    assert (error.status, error.permanent) == (429, False)
    assert error.retry_after is not None and error.retry_after > 40


async def test_wrong_key_is_permanent(lin: Env) -> None:
    error = await failure(lin.client(api_key="Bearer lin_api_fake").find(MARKER))
    assert (error.status, error.permanent, error.code) == (401, True, "AUTHENTICATION_ERROR")
    assert "You need to authenticate" in error.message


async def test_forbidden_is_permanent(lin: Env) -> None:
    lin.state.fail_next = ["FORBIDDEN"]
    error = await failure(lin.client().create(ticket_request()))
    assert (error.status, error.permanent, error.code) == (400, True, "FORBIDDEN")
    assert "You don't have access to this team." in error.message


async def test_invalid_input_is_permanent_with_linears_message(lin: Env) -> None:
    error = await failure(lin.client().create(ticket_request(assignee="user-404")))
    assert (error.status, error.permanent, error.code) == (400, True, "INVALID_INPUT")
    assert str(error) == "Linear answered 400 Bad Request: Entity not found: User (POST /graphql)"
    error = await failure(lin.client(team_id="another-team").create(ticket_request()))
    assert "Entity not found: Team" in error.message
    assert lin.state.created == 0


async def test_internal_errors_are_transient(lin: Env) -> None:
    lin.state.fail_next = ["INTERNAL_SERVER_ERROR", 503]
    first = await failure(lin.client().find(MARKER))
    second = await failure(lin.client().find(MARKER))
    assert (first.permanent, second.status, second.permanent) == (False, 503, False)
    assert "Something went wrong." in first.message


# outages: fail_with(...) until heal(), as end-to-end tests break Linear --------------------------


@pytest.mark.parametrize(
    ("code", "words"), [("FORBIDDEN", "You don't have access to this team."), ("INVALID_INPUT", "Invalid input.")]
)
async def test_graphql_errors_under_http_200_are_permanent_in_linears_words_then_heal(
    lin: Env, code: str, words: str
) -> None:
    lin.state.fail_with(code, status=200)  # GraphQL's usual way: the HTTP exchange worked, the operation did not
    for call in (lin.client().find(MARKER), lin.client().create(ticket_request())):
        error = await failure(call)
        assert (error.service, error.status, error.permanent, error.code) == ("Linear", 200, True, code)
        assert str(error) == f"Linear answered 200 OK: {words} (POST /graphql)"
    assert lin.state.created == 0

    lin.state.heal()
    ticket = await lin.client().create(ticket_request())
    assert ticket.key == "ENG-1" and lin.state.created == 1


async def test_a_rate_limited_outage_stays_transient(lin: Env) -> None:
    lin.state.fail_with("RATELIMITED", status=200)
    for _ in range(2):
        error = await failure(lin.client().find(MARKER))
        assert (error.status, error.permanent, error.code) == (200, False, "RATELIMITED")
    lin.state.heal()
    assert await lin.client().find(MARKER) is None


def test_queries_stay_the_documents_checked_against_linears_schema() -> None:
    """These three documents were validated against linear/linear packages/sdk/src/schema.graphql
    (commit 8335e09) with graphql-core; a change here needs that check again."""
    assert linear.CREATE == (
        "mutation CreateTicket($input: IssueCreateInput!) { issueCreate(input: $input) { "
        "success issue { id identifier url state { type } } } }"
    )
    assert linear.FIND == (
        "query FindTicket($id: ID!, $line: String!) { issues(filter: { or: [{ id: { eq: $id } }, "
        "{ description: { contains: $line } }] }, first: 1, includeArchived: true) { nodes { "
        "id identifier url state { type } } } }"
    )
    assert linear.STATUS == "query TicketStatus($id: String!) { issue(id: $id) { id identifier url state { type } } }"


def test_the_client_is_a_ticket_client() -> None:
    assert isinstance(LinearClient(linear.API_URL, "k", "t", None), TicketClient)  # type: ignore[arg-type]
