"""The one ticket-state mapping (postmortem.models): the tracker webhooks (a pushed status) and the
ticket clients (the polled one) read a tracker's state through it, so they cannot disagree.

They did once, on Jira: the webhook lowered the resolution name and compared it with a shorter list,
so "Won’t Fix" (typographic apostrophe) and "Wont Do" made a dropped issue COMPLETED when pushed and
WONT_DO when polled. The client was right: Jira's resolutions are names a site admin types, and a
dropped issue must not count as a finished fix.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest

from postmortem.integrations.github_issues import github_state as polled_github
from postmortem.integrations.jira import jira_state as polled_jira
from postmortem.integrations.linear import linear_state as polled_linear
from postmortem.models import (
    TICKET_STATUS,
    ActionItemStatus,
    TicketState,
    github_ticket_state,
    jira_ticket_state,
    linear_ticket_state,
)
from postmortem.webhooks.trackers import github_state as pushed_github
from postmortem.webhooks.trackers import jira_state as pushed_jira
from postmortem.webhooks.trackers import linear_state as pushed_linear
from tests.fixtures import fixture_json


def test_every_ticket_state_has_an_action_item_status() -> None:
    assert set(TICKET_STATUS) == set(get_args(TicketState))
    assert TICKET_STATUS == {
        "open": ActionItemStatus.OPEN,
        "in_progress": ActionItemStatus.IN_PROGRESS,
        "done": ActionItemStatus.COMPLETED,
        "wont_do": ActionItemStatus.WONT_DO,
    }


def test_jira_status_categories_as_jira_serves_them() -> None:
    categories = {category["key"]: category["name"] for category in fixture_json("jira_statuscategories_response.json")}
    assert categories == {"undefined": "No Category", "new": "To Do", "indeterminate": "In Progress", "done": "Done"}
    assert {key: jira_ticket_state(key) for key in categories} == {
        "undefined": "open",
        "new": "open",
        "indeterminate": "in_progress",
        "done": "done",
    }
    assert jira_ticket_state("in-flight") == "open"  # the OpenAPI example's key, which Jira never sends


@pytest.mark.parametrize(
    ("category", "resolution", "status", "expected"),
    [
        ("done", "Done", "Closed", "done"),
        ("done", "Fixed", "Closed", "done"),
        ("done", None, None, "done"),
        ("done", "Won't Do", "Closed", "wont_do"),
        ("done", "Won't Fix", "Closed", "wont_do"),
        ("done", "Declined", "Closed", "wont_do"),
        ("done", "Duplicate", "Closed", "wont_do"),
        ("done", "Cancelled", "Closed", "wont_do"),
        ("done", "Canceled", "Closed", "wont_do"),
        # where the webhook and the client used to disagree (the webhook said "done")
        ("done", "Won\u2019t Fix", "Closed", "wont_do"),
        ("done", "Wont Do", "Closed", "wont_do"),
        ("done", "  WON'T   DO ", "Closed", "wont_do"),
        ("done", None, "Won\u2019t do", "wont_do"),  # team-managed projects: a status, no resolution
        ("indeterminate", "Won't Do", "In Progress", "in_progress"),  # reopened with a stale resolution
        ("new", "Duplicate", "To Do", "open"),
    ],
)
def test_jira_resolutions(category: str, resolution: str | None, status: str | None, expected: str) -> None:
    assert jira_ticket_state(category, resolution, status) == expected


def jira_fields(category: str, resolution: str | None, status: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": {"name": status, "statusCategory": {"key": category}}}
    if resolution is not None:
        fields["resolution"] = {"name": resolution}
    return fields


@pytest.mark.parametrize("resolution", ["Won\u2019t Fix", "Wont Do", "Won't Do", "Fixed", None])
@pytest.mark.parametrize("category", ["new", "indeterminate", "done", "undefined"])
def test_jira_pushed_and_polled_agree(category: str, resolution: str | None) -> None:
    fields = jira_fields(category, resolution, "Closed")
    pushed = pushed_jira({"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-1", "fields": fields}})
    assert pushed == ("OPS-1", polled_jira(fields))


def test_a_jira_event_without_a_status_category_changes_nothing() -> None:
    assert pushed_jira({"issue": {"key": "OPS-1", "fields": {"summary": "renamed"}}}) is None
    assert polled_jira({}) == "open"  # a polled issue always has one; without it nothing is finished


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        ("open", None, "open"),
        ("open", "reopened", "open"),
        ("closed", "completed", "done"),
        ("closed", None, "done"),
        ("closed", "not_planned", "wont_do"),
        ("closed", "duplicate", "wont_do"),
        (None, None, "open"),  # nothing is finished unless GitHub says closed
    ],
)
def test_github_states(state: str | None, reason: str | None, expected: str) -> None:
    assert github_ticket_state(state, reason) == expected
    event: dict[str, Any] = {
        "action": "edited",
        "issue": {"number": 7, "state": state, "state_reason": reason},
        "repository": {"full_name": "acme/ops"},
    }
    assert pushed_github(event) == ("acme/ops#7", expected) == ("acme/ops#7", polled_github(event["issue"]))


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
def test_linear_states(state_type: str | None, expected: str) -> None:
    assert linear_ticket_state(state_type) == expected == polled_linear(state_type)
    if state_type is not None:
        event = {"type": "Issue", "data": {"identifier": "ENG-1", "state": {"type": state_type}}}
        assert pushed_linear(event) == ("ENG-1", expected)
