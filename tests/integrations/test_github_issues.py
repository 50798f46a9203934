"""GitHubIssuesClient against the loopback GitHub: the create request, find by label then search, states, failures."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
import pytest_asyncio

from postmortem.integrations.github_issues import GitHubIssuesClient, github_state, issue_body, marker_line
from postmortem.integrations.http_errors import request
from postmortem.integrations.tickets import Ticket, TicketClient, TicketRequest, seconds_until_epoch
from tests.fakes.github import VALIDATION_FAILED_RECORDED, FakeGitHub, github_app
from tests.fakes.serve import loopback_client, serve_app
from tests.fixtures import fixture_json
from tests.integrations.support import failure

MARKER = "pm-abc123-item-9f2e"
DESCRIPTION = "Roll back the **deploy** when the error budget burns.\n\n- add an alert\n- link the runbook\n"
RECORDED_ISSUE = fixture_json("github_create_issue_add_labels_recorded.json")[0]["response"]


def ticket_request(**overrides: Any) -> TicketRequest:
    values: dict[str, Any] = dict(
        marker=MARKER,
        title="Alert on API error budget burn",
        description=DESCRIPTION,
        due_date=date(2024, 6, 1),
        priority="HIGH",
        assignee="octocat",
        labels=("reliability",),
    )
    values.update(overrides)
    return TicketRequest(**values)


@dataclass
class Env:
    state: FakeGitHub
    base: str
    http: httpx.AsyncClient

    def client(self, token: str | None = None) -> GitHubIssuesClient:
        return GitHubIssuesClient(self.base, token or self.state.token, self.state.repo, self.http)

    def paths(self) -> list[str]:
        return [item.path for item in self.state.requests]


@pytest_asyncio.fixture(scope="module")
async def github_server() -> AsyncIterator[tuple[FakeGitHub, str]]:
    state = FakeGitHub()
    async with serve_app(github_app(state)) as base:
        yield state, base


@pytest_asyncio.fixture
async def gh(github_server: tuple[FakeGitHub, str]) -> AsyncIterator[Env]:
    state, base = github_server
    state.reset()
    async with loopback_client() as http:
        yield Env(state, base, http)


# the create request -----------------------------------------------------------------------------


async def test_create_sends_title_body_labels_and_assignee(gh: Env) -> None:
    ticket = await gh.client().create(ticket_request())
    assert ticket == Ticket(key="acme/ops#1", url="https://github.com/acme/ops/issues/1", state="open")
    sent = gh.state.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/repos/acme/ops/issues")
    assert sent.headers["authorization"] == "Bearer ghp-fake-token"
    assert sent.headers["accept"] == "application/vnd.github+json"
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert json.loads(sent.body) == {
        "title": "Alert on API error budget burn",
        "body": (
            "Roll back the **deploy** when the error budget burns.\n\n- add an alert\n- link the runbook\n\n"
            "**Due:** 2024-06-01 · **Priority:** high\n\n"
            "<!-- postmortem:pm-abc123-item-9f2e -->\n"
        ),
        "labels": ["postmortem", "reliability"],  # one label of ours, never one per item
        "assignees": ["octocat"],
    }
    made = gh.state.issues[1]
    assert set(made) == set(RECORDED_ISSUE)  # the recorded issue object's shape
    assert [label["name"] for label in made["labels"]] == ["postmortem", "reliability"]
    assert gh.state.created == 1


async def test_optional_parts_are_left_out(gh: Env) -> None:
    await gh.client().create(
        ticket_request(due_date=None, assignee=None, labels=("Postmortem",), priority="LOW", description="")
    )
    assert gh.state.payloads[-1] == {
        "title": "Alert on API error budget burn",
        "body": "**Priority:** low\n\n<!-- postmortem:pm-abc123-item-9f2e -->\n",
        "labels": ["postmortem"],  # GitHub label names ignore case: no second "Postmortem"
    }


def test_the_marker_line_ends_the_body() -> None:
    body = issue_body(ticket_request(priority="MEDIUM"))
    assert body.endswith(marker_line(MARKER) + "\n")
    assert "**Priority:** medium" in body


# find before create -----------------------------------------------------------------------------


async def test_find_reads_the_bodies_of_our_labelled_issues_and_needs_no_search(gh: Env) -> None:
    gh.state.add_issue("other", body=f"{marker_line(MARKER + '0')}\n", labels=("postmortem",))
    gh.state.add_issue(
        "ours, from before: it also carries a label per item",
        body=f"text\n\n{marker_line(MARKER)}\n",
        labels=("postmortem", MARKER),
        state="closed",
        state_reason="completed",
    )
    gh.state.add_issue("not ours", body=f"{marker_line(MARKER)}\n", labels=("bug",))
    found = await gh.client().find(MARKER)
    assert found == Ticket(key="acme/ops#2", url="https://github.com/acme/ops/issues/2", state="done")
    assert gh.paths() == ["/repos/acme/ops/issues"]
    assert gh.state.requests[0].params == {
        "labels": "postmortem",
        "state": "all",
        "sort": "created",
        "direction": "desc",
        "per_page": "100",
        "page": "1",
    }


async def test_find_pages_through_our_issues_newest_first(gh: Env) -> None:
    gh.state.add_issue("the one", body=f"{marker_line(MARKER)}\n", labels=("postmortem",))
    for n in range(150):
        gh.state.add_issue(f"item {n}", body=f"{marker_line(f'pm-other-item-{n}')}\n", labels=("postmortem",))
    found = await gh.client().find(MARKER)
    assert found is not None and found.key == "acme/ops#1"
    assert [r.params["page"] for r in gh.state.requests] == ["1", "2"]


async def test_a_configured_label_is_the_only_one_of_ours(gh: Env) -> None:
    client = GitHubIssuesClient(gh.base, gh.state.token, gh.state.repo, gh.http, label="incident-review")
    for _ in range(2):
        if await client.find(MARKER) is None:
            await client.create(ticket_request(labels=("incident-review",)))
    second = ticket_request(marker="pm-abc123-item-0001", labels=("incident-review",))
    if await client.find(second.marker) is None:
        await client.create(second)
    assert gh.state.created == 2
    assert set(gh.state.labels) == {"incident-review"}  # two items, one label in the repository
    assert gh.state.requests[0].params["labels"] == "incident-review"
    for bad in ("", "a,b", "x" * 51):
        with pytest.raises(ValueError, match="label"):
            GitHubIssuesClient(gh.base, "t", "acme/ops", gh.http, label=bad)


async def test_find_falls_back_to_search_when_labels_were_dropped(gh: Env) -> None:
    gh.state.push_access = False  # GitHub silently drops labels and assignees
    client = gh.client()
    created = await client.create(ticket_request())
    assert gh.state.issues[1]["labels"] == [] and gh.state.issues[1]["assignees"] == []
    assert await client.find(MARKER) == created
    search = gh.state.requests[-1]
    assert gh.paths()[-2:] == ["/repos/acme/ops/issues", "/search/issues"]
    assert search.params["q"] == f'repo:acme/ops is:issue in:body "{MARKER}"'


async def test_a_search_hit_counts_only_with_the_exact_marker_line(gh: Env) -> None:
    gh.state.add_issue("longer marker", body=f"{marker_line(MARKER + '0')}\n")
    gh.state.add_issue("mentions it", body=f"see {MARKER} in the post-mortem")
    assert await gh.client().find(MARKER) is None
    assert gh.paths()[-1] == "/search/issues"


async def test_find_then_create_makes_one_issue(gh: Env) -> None:
    client = gh.client()
    for _ in range(3):
        if await client.find(MARKER) is None:
            await client.create(ticket_request())
    assert gh.state.created == 1


async def test_a_lost_create_is_found_even_before_the_search_index_catches_up(gh: Env) -> None:
    gh.state.search_lag = True
    gh.state.crash_after_create = True
    client = gh.client()
    error = await failure(client.create(ticket_request()))
    assert (error.status, error.permanent) == (500, False)
    gh.state.crash_after_create = False
    assert await client.find(MARKER) == Ticket(
        key="acme/ops#1", url="https://github.com/acme/ops/issues/1", state="open"
    )
    assert gh.state.created == 1
    assert gh.paths()[-1] == "/repos/acme/ops/issues"  # found among our labelled issues, no search needed


async def test_search_needs_is_issue(gh: Env) -> None:
    """Why the query carries is:issue: GitHub refuses issue searches without it (422)."""
    error = await failure(
        request(
            gh.http,
            "GitHub",
            "GET",
            f"{gh.base}/search/issues",
            params={"q": f'repo:acme/ops "{MARKER}"'},
            headers={"Authorization": f"Bearer {gh.state.token}"},
        )
    )
    assert (error.status, error.permanent) == (422, True)
    assert "Query must include 'is:issue' or 'is:pull-request'" in error.message


async def test_a_bad_marker_is_refused_without_a_request(gh: Env) -> None:
    for marker in ("", 'pm" is:pr "x', "x" * 51):
        with pytest.raises(ValueError):
            await gh.client().find(marker)
    assert gh.state.requests == []


# status -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        ("open", None, "open"),
        ("open", "reopened", "open"),
        ("closed", "completed", "done"),
        ("closed", None, "done"),
        ("closed", "not_planned", "wont_do"),
        ("closed", "duplicate", "wont_do"),
    ],
)
def test_state_mapping(state: str, reason: str | None, expected: str) -> None:
    assert github_state({"state": state, "state_reason": reason}) == expected


async def test_status_follows_the_issue(gh: Env) -> None:
    client = gh.client()
    ticket = await client.create(ticket_request())
    assert (await client.status(ticket.key)).state == "open"
    gh.state.close(1, "not_planned")
    assert (await client.status(ticket.key)).state == "wont_do"
    gh.state.reopen(1)
    assert (await client.status("#1")).state == "open"
    gh.state.close(1, "completed")
    assert await client.status("1") == Ticket(
        key="acme/ops#1", url="https://github.com/acme/ops/issues/1", state="done"
    )
    assert gh.paths()[-1] == "/repos/acme/ops/issues/1"


async def test_bad_keys_are_refused_without_a_request(gh: Env) -> None:
    for key in ("", "acme/ops1", "#0", "acme#1", "../x#1", "acme/ops#1x", "ENG-1"):
        with pytest.raises(ValueError):
            await gh.client().status(key)
    assert gh.state.requests == []


async def test_a_key_of_another_repository_is_asked_there(gh: Env) -> None:
    error = await failure(gh.client().status("acme/web#3"))
    assert (error.status, error.permanent) == (404, True)
    assert gh.paths() == ["/repos/acme/web/issues/3"]


# failures ---------------------------------------------------------------------------------------


async def test_issues_disabled_is_permanent(gh: Env) -> None:
    gh.state.issues_enabled = False
    error = await failure(gh.client().create(ticket_request()))
    assert (error.status, error.permanent) == (410, True)
    assert str(error) == "GitHub answered 410 Gone: Issues are disabled for this repo (POST /repos/acme/ops/issues)"


async def test_validation_failed_is_permanent_with_githubs_errors(gh: Env) -> None:
    error = await failure(gh.client().create(ticket_request(assignee="nobody")))
    assert (error.status, error.permanent) == (422, True)
    assert str(error) == (
        "GitHub answered 422 Unprocessable Entity: Validation Failed: Issue.assignees invalid "
        "(nobody) (POST /repos/acme/ops/issues)"
    )
    assert gh.state.created == 0


async def test_primary_rate_limit_403_is_transient_until_the_reset(gh: Env) -> None:
    gh.state.fail_next = ["rate_limit"]
    error = await failure(gh.client().find(MARKER))
    assert (error.status, error.permanent, error.code) == (403, False, "rate_limited")
    assert error.retry_after is not None and 38 <= error.retry_after <= 40
    assert "API rate limit exceeded" in error.message


async def test_secondary_rate_limit_403_honours_retry_after(gh: Env) -> None:
    gh.state.fail_next = ["secondary_rate_limit"]
    gh.state.retry_after = "17"
    error = await failure(gh.client().create(ticket_request()))
    assert (error.status, error.permanent, error.retry_after) == (403, False, 17.0)
    assert error.code == "secondary_rate_limited"
    assert "secondary rate limit" in error.message


async def test_secondary_rate_limit_without_retry_after_waits_a_minute(gh: Env) -> None:
    gh.state.fail_next = ["secondary_no_retry_after"]
    error = await failure(gh.client().create(ticket_request()))
    assert (error.status, error.permanent, error.retry_after) == (403, False, 60.0)


async def test_429_is_transient_with_retry_after(gh: Env) -> None:
    gh.state.fail_next = [429]
    gh.state.retry_after = "5"
    error = await failure(gh.client().status("#1"))
    assert (error.status, error.permanent, error.retry_after) == (429, False, 5.0)


async def test_other_403s_are_permanent(gh: Env) -> None:
    gh.state.fail_next = [403]
    error = await failure(gh.client().create(ticket_request()))
    assert (error.status, error.permanent, error.retry_after) == (403, True, None)
    assert "Resource not accessible by integration" in error.message


async def test_bad_credentials_are_permanent(gh: Env) -> None:
    error = await failure(gh.client(token="revoked").find(MARKER))
    assert (error.status, error.permanent) == (401, True)
    assert "Bad credentials" in error.message


async def test_unknown_issue_is_permanent(gh: Env) -> None:
    error = await failure(gh.client().status("#99"))
    assert (error.status, error.permanent) == (404, True)
    assert str(error) == "GitHub answered 404 Not Found: Not Found (GET /repos/acme/ops/issues/99)"


async def test_server_errors_are_transient(gh: Env) -> None:
    gh.state.fail_next = [502]
    error = await failure(gh.client().find(MARKER))
    assert (error.status, error.permanent) == (502, False)


def test_reset_times_in_seconds_or_milliseconds() -> None:
    now = 1_700_000_000.0
    assert seconds_until_epoch("1700000030", now) == 30.0
    assert seconds_until_epoch("1700000030000", now) == 30.0  # octokit's fixture writes milliseconds
    assert seconds_until_epoch("1699999990", now) == 0.0
    assert seconds_until_epoch(None, now) is None and seconds_until_epoch("soon", now) is None
    assert seconds_until_epoch(str(int(time.time()) + 10)) is not None


def test_the_client_is_a_ticket_client() -> None:
    assert isinstance(GitHubIssuesClient("https://api.github.com", "t", "acme/ops", None), TicketClient)  # type: ignore[arg-type]
    for repo in ("acme", "acme/ops/x", "../ops", "acme/.."):
        with pytest.raises(ValueError):
            GitHubIssuesClient("https://api.github.com", "t", repo, None)  # type: ignore[arg-type]


# outages: fail_with(...) until heal(), as end-to-end tests break GitHub --------------------------


async def test_issues_disabled_outage_is_permanent_in_githubs_words_then_heals(gh: Env) -> None:
    gh.state.fail_with(410)
    for call in (gh.client().find(MARKER), gh.client().create(ticket_request()), gh.client().status("#1")):
        error = await failure(call)
        assert (error.service, error.status, error.permanent) == ("GitHub", 410, True)
        assert "GitHub answered 410 Gone: Issues are disabled for this repo" in str(error)
    assert gh.state.created == 0

    gh.state.heal()
    assert await gh.client().find(MARKER) is None
    ticket = await gh.client().create(ticket_request())
    assert ticket.key == "acme/ops#1" and gh.state.created == 1


async def test_validation_failed_outage_is_permanent_with_githubs_errors_then_heals(gh: Env) -> None:
    gh.state.fail_with(422, path="/repos/acme/ops/issues")
    error = await failure(gh.client().create(ticket_request()))
    assert (error.status, error.permanent) == (422, True)
    assert str(error) == (
        "GitHub answered 422 Unprocessable Entity: Validation Failed: Issue.assignees invalid "
        "(nobody) (POST /repos/acme/ops/issues)"
    )
    gh.state.heal()
    assert (await gh.client().create(ticket_request())).key == "acme/ops#1"


async def test_the_recorded_422_body_is_read_the_same_way(gh: Env) -> None:
    recorded = fixture_json("github_validation_failed_422_recorded.json")[0]
    assert recorded["status"] == 422 and recorded["response"] == VALIDATION_FAILED_RECORDED
    gh.state.fail_with((422, VALIDATION_FAILED_RECORDED))
    error = await failure(gh.client().create(ticket_request()))
    assert (error.status, error.permanent) == (422, True)
    assert str(error) == (
        "GitHub answered 422 Unprocessable Entity: Validation Failed: Label.color invalid (POST /repos/acme/ops/issues)"
    )
