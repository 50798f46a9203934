"""JiraClient against the loopback Jira: the create request, ADF, find-by-marker, states and every failure."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import pytest_asyncio

from postmortem.integrations.http_errors import request
from postmortem.integrations.jira import JiraClient, jira_labels, summary, to_adf
from postmortem.integrations.tickets import Ticket, TicketClient, TicketRequest
from postmortem.models import TicketState
from tests.fakes.jira import REFUSED_FIELDS, FakeJira, jira_app
from tests.fakes.serve import loopback_client, serve_app
from tests.fixtures import fixture_json
from tests.integrations.support import failure

MARKER = "pm-abc123-item-9f2e"
DESCRIPTION = """Roll back the **deploy** when the error budget burns.

- add an alert on `5xx` rate
- link the [runbook](https://runbooks.example/api)
"""


def ticket_request(**overrides: Any) -> TicketRequest:
    values: dict[str, Any] = dict(
        marker=MARKER,
        title="Alert on API error budget burn",
        description=DESCRIPTION,
        due_date=date(2024, 6, 1),
        priority="HIGH",
        assignee="5b109f2e9729b51b54dc274d",
        labels=("postmortem", "api"),
    )
    values.update(overrides)
    return TicketRequest(**values)


@dataclass
class Env:
    state: FakeJira
    base: str
    http: httpx.AsyncClient

    def client(self, **kwargs: Any) -> JiraClient:
        return JiraClient(
            self.base, self.state.email, kwargs.pop("api_token", self.state.api_token), "OPS", self.http, **kwargs
        )


@pytest_asyncio.fixture(scope="module")
async def jira_server() -> AsyncIterator[tuple[FakeJira, str]]:
    state = FakeJira()
    async with serve_app(jira_app(state)) as base:
        yield state, base


@pytest_asyncio.fixture
async def jira(jira_server: tuple[FakeJira, str]) -> AsyncIterator[Env]:
    state, base = jira_server
    state.reset()
    async with loopback_client() as http:
        yield Env(state, base, http)


# the create request -----------------------------------------------------------------------------


async def test_create_sends_the_v3_issue_fields(jira: Env) -> None:
    ticket = await jira.client().create(ticket_request())
    assert ticket == Ticket(key="OPS-24", url=f"{jira.base}/browse/OPS-24", state="open")
    sent = jira.state.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/rest/api/3/issue")
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(b"bot@example.com:jira-fake-token").decode()
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.body) == {
        "fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Task"},
            "summary": "Alert on API error budget burn",
            "description": to_adf(f"{DESCRIPTION.rstrip()}\n\npostmortem:{MARKER}"),
            "labels": ["postmortem", "api"],
            "duedate": "2024-06-01",
            "priority": {"name": "High"},
            "assignee": {"id": "5b109f2e9729b51b54dc274d"},
        },
        "properties": [{"key": "postmortem", "value": {"marker": MARKER}}],
    }
    assert jira.state.created == 1


@pytest.mark.parametrize(("ours", "jiras"), [("HIGH", "High"), ("MEDIUM", "Medium"), ("LOW", "Low")])
async def test_priority_names(jira: Env, ours: str, jiras: str) -> None:
    await jira.client().create(ticket_request(priority=ours))
    assert jira.state.payloads[-1]["fields"]["priority"] == {"name": jiras}


async def test_optional_fields_are_left_out(jira: Env) -> None:
    await jira.client(issue_type="Bug", priority_names=None).create(
        ticket_request(due_date=None, assignee=None, labels=())
    )
    fields = jira.state.payloads[-1]["fields"]
    assert set(fields) == {"project", "issuetype", "summary", "description", "labels"}
    assert fields["issuetype"] == {"name": "Bug"}
    assert fields["labels"] == []  # the marker is no label: the entity property and the description carry it


def test_labels_and_summary_are_made_acceptable_to_jira() -> None:
    assert jira_labels(("needs review", " api ", "api", "", "postmortem")) == ["needs-review", "api", "postmortem"]
    assert summary("Fix\nthe   pager\trotation") == "Fix the pager rotation"
    long = summary("x" * 300)
    assert len(long) == 255 and long.endswith("…")


def test_to_adf_paragraphs_lists_and_marks() -> None:
    assert to_adf(DESCRIPTION) == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Roll back the "},
                    {"type": "text", "text": "deploy", "marks": [{"type": "strong"}]},
                    {"type": "text", "text": " when the error budget burns."},
                ],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [
                                    {"type": "text", "text": "add an alert on "},
                                    {"type": "text", "text": "5xx", "marks": [{"type": "code"}]},
                                    {"type": "text", "text": " rate"},
                                ],
                            }
                        ],
                    },
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [
                                    {"type": "text", "text": "link the "},
                                    {
                                        "type": "text",
                                        "text": "runbook",
                                        "marks": [{"type": "link", "attrs": {"href": "https://runbooks.example/api"}}],
                                    },
                                ],
                            }
                        ],
                    },
                ],
            },
        ],
    }


def test_to_adf_other_blocks() -> None:
    doc = to_adf("# Title\n\nline one\nline two\n\n1. first\n2. second\n\n```sh\nkubectl rollout undo\n```\n\n---\n")
    assert doc["content"] == [
        {"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "Title"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "line one line two"}]},  # a soft break is a space
        {
            "type": "orderedList",
            "attrs": {"order": 1},
            "content": [
                {
                    "type": "listItem",
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "first"}]}],
                },
                {
                    "type": "listItem",
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "second"}]}],
                },
            ],
        },
        {
            "type": "codeBlock",
            "attrs": {"language": "sh"},
            "content": [{"type": "text", "text": "kubectl rollout undo"}],
        },
        {"type": "rule"},
    ]
    assert to_adf("") == {"type": "doc", "version": 1, "content": []}
    # a list item without text still starts with a paragraph, as ADF requires
    assert to_adf("-\n")["content"][0]["content"][0]["content"] == [{"type": "paragraph", "content": []}]


async def test_the_fake_refuses_a_plain_string_description(jira: Env) -> None:
    """Why to_adf exists: v3 refuses Markdown/plain text in `description` (400, permanent)."""
    error = await failure(
        request(
            jira.http,
            "Jira",
            "POST",
            f"{jira.base}/rest/api/3/issue",
            headers={"Authorization": jira.state.basic()},
            json={
                "fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "x", "description": "y"}
            },
        )
    )
    assert (error.status, error.permanent) == (400, True)
    assert "description: Operation value must be an Atlassian Document" in error.message


# find before create -----------------------------------------------------------------------------


async def test_find_returns_the_issue_labelled_with_the_marker(jira: Env) -> None:
    jira.state.add_issue("OPS-7", [MARKER, "postmortem"], category="indeterminate")
    jira.state.add_issue("OPS-8", ["pm-abc123-item-9f2e0"])  # a longer marker is another marker
    found = await jira.client().find(MARKER)
    assert found == Ticket(key="OPS-7", url=f"{jira.base}/browse/OPS-7", state="in_progress")
    sent = jira.state.requests[-1]
    assert (sent.method, sent.path) == ("GET", "/rest/api/3/search/jql")
    assert sent.params == {
        "jql": f'issue.property[postmortem].marker = "{MARKER}" OR labels = "{MARKER}" ORDER BY created ASC',
        "fields": "status,resolution",
        "maxResults": "1",
    }


async def test_find_returns_none_without_an_issue(jira: Env) -> None:
    jira.state.add_issue("OPS-8", ["pm-abc123-item-9f2e0"])
    assert await jira.client().find(MARKER) is None


async def test_find_then_create_makes_one_issue(jira: Env) -> None:
    client = jira.client()
    for _ in range(3):  # three tries of the same action item
        if await client.find(MARKER) is None:
            await client.create(ticket_request())
    assert jira.state.created == 1
    assert await client.find(MARKER) == Ticket(key="OPS-24", url=f"{jira.base}/browse/OPS-24", state="open")


async def test_a_create_whose_answer_was_lost_is_found_on_the_next_try(jira: Env) -> None:
    jira.state.crash_after_create = True
    client = jira.client()
    error = await failure(client.create(ticket_request()))
    assert (error.status, error.permanent) == (500, False)
    jira.state.crash_after_create = False
    found = await client.find(MARKER)
    assert found is not None and found.key == "OPS-24"
    assert jira.state.created == 1


async def test_a_bad_marker_is_refused_without_a_request(jira: Env) -> None:
    for marker in ("", 'pm" OR project = X', "pm with space", "x" * 51):
        with pytest.raises(ValueError):
            await jira.client().find(marker)
    with pytest.raises(ValueError):
        ticket_request(marker="two words")
    assert jira.state.requests == []


async def test_the_classic_search_endpoint_is_gone(jira: Env) -> None:
    """Why find uses /search/jql: Jira Cloud answers 410 on the classic endpoint since 2025."""
    error = await failure(
        request(
            jira.http,
            "Jira",
            "GET",
            f"{jira.base}/rest/api/3/search",
            params={"jql": f'labels = "{MARKER}"'},
            headers={"Authorization": jira.state.basic()},
        )
    )
    assert (error.status, error.permanent) == (410, True)
    assert "migrate to the /rest/api/3/search/jql API" in error.message


# status -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "status_name", "resolution", "expected"),
    [
        ("new", None, None, "open"),
        ("undefined", "Odd", None, "open"),
        ("indeterminate", None, None, "in_progress"),
        ("indeterminate", "In Review", None, "in_progress"),
        ("done", None, "Done", "done"),
        ("done", "Closed", "Fixed", "done"),
        ("done", None, None, "done"),
        ("done", "Closed", "Won't Do", "wont_do"),
        ("done", "Closed", "Won't Fix", "wont_do"),
        ("done", "Closed", "Won\u2019t Fix", "wont_do"),
        ("done", "Closed", "Declined", "wont_do"),
        ("done", "Closed", "Duplicate", "wont_do"),
        ("done", "Won't Do", None, "wont_do"),  # team-managed projects: a status, no resolution
        ("indeterminate", None, "Won't Do", "in_progress"),  # reopened, stale resolution: it is active
    ],
)
async def test_status_maps_category_and_resolution(
    jira: Env, category: str, status_name: str | None, resolution: str | None, expected: TicketState
) -> None:
    jira.state.add_issue("OPS-3", [MARKER])
    jira.state.transition("OPS-3", category, status_name=status_name, resolution=resolution)
    ticket = await jira.client().status("OPS-3")
    assert ticket == Ticket(key="OPS-3", url=f"{jira.base}/browse/OPS-3", state=expected)


async def test_status_follows_a_person_working_the_issue(jira: Env) -> None:
    client = jira.client()
    ticket = await client.create(ticket_request())
    assert (await client.status(ticket.key)).state == "open"
    jira.state.start(ticket.key)
    assert (await client.status(ticket.key)).state == "in_progress"
    jira.state.close(ticket.key, resolution="Won't Do")
    assert (await client.status(ticket.key)).state == "wont_do"
    jira.state.reopen(ticket.key)
    jira.state.close(ticket.key)
    assert (await client.status(ticket.key)).state == "done"
    sent = jira.state.requests[-1]
    assert (sent.path, sent.params) == ("/rest/api/3/issue/OPS-24", {"fields": "status,resolution"})


async def test_status_keys_are_one_path_segment(jira: Env) -> None:
    error = await failure(jira.client().status("../../myself"))
    assert (error.status, error.permanent) == (404, True)
    assert jira.state.requests[-1].raw_path == "/rest/api/3/issue/..%2F..%2Fmyself"
    with pytest.raises(ValueError):
        await jira.client().status("")


# failures ---------------------------------------------------------------------------------------


async def test_400_from_the_fixture_is_permanent_with_jiras_message(jira: Env) -> None:
    jira.state.fail_next = [400]
    error = await failure(jira.client().create(ticket_request()))
    assert fixture_json("jira_v3_create_issue_response_400.json")["errorMessages"] == ["Field 'priority' is required"]
    assert (error.status, error.permanent, error.retry_after) == (400, True, None)
    assert str(error) == "Jira answered 400 Bad Request: Field 'priority' is required (POST /rest/api/3/issue)"


async def test_400_field_errors_are_named_in_the_message(jira: Env) -> None:
    client = jira.client(priority_names={"HIGH": "Urgent", "MEDIUM": "Medium", "LOW": "Low"})
    error = await failure(client.create(ticket_request()))
    assert (error.status, error.permanent) == (400, True)
    assert "priority: Specify the Priority (name) in the string format" in error.message
    jira.state.bad_request_body = {
        "errorMessages": [],
        "errors": {"assignee": "User 'x' cannot be assigned issues.", "duedate": "Due date is required."},
    }
    jira.state.fail_next = [400]
    error = await failure(jira.client().create(ticket_request()))
    assert "assignee: User 'x' cannot be assigned issues.; duedate: Due date is required." in error.message
    assert jira.state.created == 0


async def test_wrong_token_is_permanent(jira: Env) -> None:
    error = await failure(jira.client(api_token="revoked").find(MARKER))
    assert (error.status, error.permanent) == (401, True)
    assert "You are not authenticated" in error.message


@pytest.mark.parametrize("status", [403, 404])
async def test_403_and_404_are_permanent(jira: Env, status: int) -> None:
    jira.state.fail_next = [status]
    error = await failure(jira.client().create(ticket_request()))
    assert (error.status, error.permanent) == (status, True)


async def test_unknown_issue_is_permanent_not_found(jira: Env) -> None:
    error = await failure(jira.client().status("OPS-999"))
    assert (error.status, error.permanent) == (404, True)
    assert "Issue does not exist or you do not have permission to see it." in error.message


async def test_429_is_transient_and_honours_retry_after(jira: Env) -> None:
    jira.state.fail_next = [429]
    error = await failure(jira.client().find(MARKER))
    assert (error.status, error.permanent, error.retry_after) == (429, False, 30.0)
    assert "Rate limit exceeded." in error.message
    assert await jira.client().find(MARKER) is None  # the next call goes through


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_transient(jira: Env, status: int) -> None:
    jira.state.fail_next = [status]
    error = await failure(jira.client().status("OPS-1"))
    assert (error.status, error.permanent) == (status, False)


# outages: fail_with(...) until heal(), as end-to-end tests break Jira ----------------------------


async def test_400_outage_is_permanent_with_both_halves_of_jiras_errors_then_heals(jira: Env) -> None:
    assert REFUSED_FIELDS["errorMessages"] and REFUSED_FIELDS["errors"]  # both halves of Jira's ErrorCollection
    jira.state.fail_with((400, REFUSED_FIELDS), path="/rest/api/3/issue")
    for _ in range(2):  # it lasts: a retry is refused the same way
        error = await failure(jira.client().create(ticket_request()))
        assert (error.service, error.status, error.permanent, error.retry_after) == ("Jira", 400, True, None)
        assert str(error) == (
            "Jira answered 400 Bad Request: Field 'priority' is required; project: valid project is required "
            "(POST /rest/api/3/issue)"
        )
    assert await jira.client().find(MARKER) is None  # the search is not under the outage
    assert (jira.state.created, jira.state.refused) == (0, 2)

    jira.state.heal()
    assert (await jira.client().create(ticket_request())).key == "OPS-24"
    assert jira.state.created == 1


async def test_400_outage_answers_the_fixture_by_default(jira: Env) -> None:
    jira.state.fail_with(400)
    error = await failure(jira.client().create(ticket_request()))
    assert str(error) == "Jira answered 400 Bad Request: Field 'priority' is required (POST /rest/api/3/issue)"
    assert error.permanent is True


def test_the_client_is_a_ticket_client() -> None:
    assert isinstance(JiraClient("https://x.atlassian.net", "a@b.c", "t", "OPS", None), TicketClient)  # type: ignore[arg-type]


async def test_find_uses_the_entity_property_the_create_set(jira: Env) -> None:
    client = jira.client()
    created = await client.create(ticket_request())
    assert jira.state.issues[created.key].properties == {"postmortem": {"marker": MARKER}}
    assert jira.state.issues[created.key].fields["labels"] == ["postmortem", "api"]
    assert await client.find(MARKER) == created
    assert await client.find("pm-abc123-item-other") is None


async def test_a_lost_create_is_found_once_the_index_catches_up(jira: Env) -> None:
    """Jira's search lags behind writes: a retry asks again for up to `settle` seconds before creating."""
    jira.state.crash_after_create, jira.state.search_lag = True, 2  # missing from the next two searches
    client = jira.client()
    await failure(client.create(ticket_request()))
    jira.state.crash_after_create = False
    found = await client.find(MARKER, settle=10)
    assert found is not None and found.key == "OPS-24" and jira.state.created == 1
    searches = [r for r in jira.state.requests if r.path == "/rest/api/3/search/jql"]
    assert len(searches) == 3


async def test_update_pushes_only_what_differs(jira: Env) -> None:
    from postmortem.integrations.tickets import TicketChange

    client = jira.client()
    created = await client.create(ticket_request())
    change = TicketChange(state="in_progress", assignee="acct-2", due_date=date(2024, 7, 1))
    assert await client.update(created.key, change) == ["assignee", "duedate", "state"]
    issue = jira.state.issues[created.key]
    assert issue.category == "indeterminate" and issue.fields["assignee"] == {"accountId": "acct-2"}
    assert issue.fields["duedate"] == "2024-07-01"
    assert await client.update(created.key, change) == []  # the ticket says so already: nothing is sent
    assert len(jira.state.edits) == 2
    done = await client.update(created.key, TicketChange(state="done", assignee=None, due_date=None))
    assert done == ["assignee", "duedate", "state"] and issue.category == "done" and issue.resolution == "Done"
    assert (await client.status(created.key)).state == "done"
    await client.update(created.key, TicketChange(state="wont_do", assignee=None, due_date=None))
    assert issue.status_name == "Won't Do" and (await client.status(created.key)).state == "wont_do"
