"""The ticket steps against Jira's and Linear's loopback stand-ins (#16): one label of ours on Jira
and the marker in an entity property; a retried create waits for Jira's lagging search instead of
making a second issue; a push writes only what differs, and nothing when the ticket says so already."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from postmortem.activities.tickets import PushTicketInput, TicketActivities, TicketsInput, marker_for
from postmortem.config import JiraSettings, LinearSettings, ServerSettings, TicketsSettings
from postmortem.models import ActionItemStatus, Priority
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event
from tests.fakes.jira import FakeJira, jira_app
from tests.fakes.linear import FakeLinear, linear_app
from tests.fakes.serve import serve_app

ACCOUNTS = {"alice@example.com": "acct-alice", "bob@example.com": "user-1"}


@pytest_asyncio.fixture
async def trackers() -> AsyncIterator[tuple[FakeJira, FakeLinear, TicketsSettings]]:
    jira, linear = FakeJira(), FakeLinear()
    async with serve_app(jira_app(jira)) as jira_url, serve_app(linear_app(linear)) as linear_url:
        yield (
            jira,
            linear,
            TicketsSettings(
                label="pm-tickets",
                jira=JiraSettings(url=jira_url, email=jira.email, api_token=jira.api_token, project="OPS"),
                linear=LinearSettings(api_url=f"{linear_url}/graphql", api_key=linear.api_key, team_id=linear.team_id),
            ),
        )


async def seed(store: Store, incident: str) -> str:
    pm, _ = await store.postmortems.create_if_absent(new_postmortem(pagerduty_event(incident).incident))
    await store.postmortems.add_action_item(
        pm.id,
        description="Lower the DNS TTL",
        owner="alice@example.com",
        due_date=date(2030, 1, 10),
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        now=datetime.now(UTC),
    )
    return pm.id


def attempt(number: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=number)
    return env


async def test_jira_one_label_of_ours_and_a_lost_create_found_after_the_search_catches_up(
    sqlite_store: Store, trackers
) -> None:
    jira, _, settings = trackers
    pm_id = await seed(sqlite_store, "PJIRA1")
    activities = TicketActivities(
        sqlite_store, tickets=settings, server=ServerSettings(public_url="https://pm.example.com")
    )
    tickets = TicketsInput(postmortem_id=pm_id, tracker="jira", accounts=ACCOUNTS, now=datetime.now(UTC))
    jira.crash_after_create, jira.search_lag = True, 3  # Jira made it; the answer was lost; search lags
    with pytest.raises(ApplicationError):
        await attempt(1).run(activities.open_tickets, tickets)
    jira.crash_after_create = False
    retried = await attempt(2).run(activities.open_tickets, tickets)
    assert retried.found == ["OPS-24"] and retried.created == [] and jira.created == 1
    issue = jira.issues["OPS-24"]
    item = (await sqlite_store.postmortems.get(pm_id)).action_items[0]
    marker = marker_for(pm_id, item.id)
    assert issue.fields["labels"] == ["pm-tickets"]  # no label per item
    assert issue.properties == {"postmortem": {"marker": marker}}
    assert f"postmortem:{marker}" in str(issue.fields["description"])
    assert item.ticket_key == "OPS-24" and item.ticket_tracker == "jira"
    await activities.aclose()


async def test_jira_push_writes_what_differs_and_nothing_twice(sqlite_store: Store, trackers) -> None:
    jira, _, settings = trackers
    pm_id = await seed(sqlite_store, "PJIRA2")
    activities = TicketActivities(sqlite_store, tickets=settings)
    now = datetime.now(UTC)
    await ActivityEnvironment().run(
        activities.open_tickets, TicketsInput(postmortem_id=pm_id, tracker="jira", accounts=ACCOUNTS, now=now)
    )
    item = (await sqlite_store.postmortems.get(pm_id)).action_items[0]
    _, version = await sqlite_store.postmortems.get_action_item(pm_id, item.id)
    changes = {"status": "IN_PROGRESS", "owner": "bob@example.com", "due_date": date(2030, 3, 1)}
    await sqlite_store.postmortems.update_action_item(pm_id, item.id, version, changes, now)
    push = PushTicketInput(postmortem_id=pm_id, item_id=item.id, accounts=ACCOUNTS)
    first = await ActivityEnvironment().run(activities.push_ticket, push)
    assert first.ticket == "OPS-24" and first.changed == ["assignee", "duedate", "state"]
    issue = jira.issues["OPS-24"]
    assert issue.category == "indeterminate" and issue.fields["duedate"] == "2030-03-01"
    assert (await ActivityEnvironment().run(activities.push_ticket, push)).changed == []  # a retry: nothing
    # Done in Jira, synced here by its webhook: the push that may follow writes nothing back.
    jira.close("OPS-24")
    await sqlite_store.postmortems.sync_item_status(pm_id, item.id, ActionItemStatus.COMPLETED, now)
    edits = len(jira.edits)
    assert (await ActivityEnvironment().run(activities.push_ticket, push)).changed == []
    assert len(jira.edits) == edits
    await activities.aclose()


async def test_linear_push_moves_the_state_and_keeps_an_unmapped_owner_s_assignee(
    sqlite_store: Store, trackers
) -> None:
    _, linear, settings = trackers
    pm_id = await seed(sqlite_store, "PLIN1")
    activities = TicketActivities(sqlite_store, tickets=settings)
    now = datetime.now(UTC)
    await ActivityEnvironment().run(
        activities.open_tickets,
        TicketsInput(postmortem_id=pm_id, tracker="linear", accounts={"alice@example.com": "user-1"}, now=now),
    )
    item = (await sqlite_store.postmortems.get(pm_id)).action_items[0]
    _, version = await sqlite_store.postmortems.get_action_item(pm_id, item.id)
    await sqlite_store.postmortems.update_action_item(
        pm_id, item.id, version, {"status": "WONT_DO", "owner": "carol@example.com", "due_date": None}, now
    )
    push = PushTicketInput(postmortem_id=pm_id, item_id=item.id, accounts={"alice@example.com": "user-1"})
    result = await ActivityEnvironment().run(activities.push_ticket, push)
    assert result.changed == ["duedate", "state"]  # carol has no Linear account: the assignee stays
    issue = linear.by_key(result.ticket or "")
    assert issue is not None and issue["state"]["type"] == "canceled" and issue["dueDate"] is None
    assert issue["assigneeId"] == "user-1" and linear.updates == [{"stateId": "state-canceled", "dueDate": None}]
    assert (await ActivityEnvironment().run(activities.push_ticket, push)).changed == []
    await activities.aclose()


async def test_a_sync_keeps_a_change_made_here_whose_push_failed_and_tells_the_ticket_again(
    sqlite_store: Store, trackers
) -> None:
    """Which side wins (#16), both sides changed: the item was done here but its push met Jira down (a
    problem on the report); meanwhile someone dropped the ticket in Jira (won't do). The item changed
    here after its last successful push, so the follow-up sync keeps it and pushes it again instead
    of undoing the edit; the sync after that has nothing to do."""
    jira, _, settings = trackers
    pm_id = await seed(sqlite_store, "PJIRA3")
    activities = TicketActivities(sqlite_store, tickets=settings)
    now = datetime.now(UTC)
    tickets = TicketsInput(postmortem_id=pm_id, tracker="jira", accounts=ACCOUNTS, now=now)
    await ActivityEnvironment().run(activities.open_tickets, tickets)
    item = (await sqlite_store.postmortems.get(pm_id)).action_items[0]
    _, version = await sqlite_store.postmortems.get_action_item(pm_id, item.id)
    await sqlite_store.postmortems.update_action_item(pm_id, item.id, version, {"status": "COMPLETED"}, now)
    jira.fail_with(503)
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(
            activities.push_ticket, PushTicketInput(postmortem_id=pm_id, item_id=item.id, accounts=ACCOUNTS)
        )
    jira.heal()
    jira.close("OPS-24", resolution="Won't Do")

    synced = await ActivityEnvironment().run(activities.sync_tickets, tickets)
    assert (synced.pushed, synced.changed) == (["OPS-24"], [])
    assert (await sqlite_store.postmortems.get(pm_id)).action_items[0].status == ActionItemStatus.COMPLETED
    issue = jira.issues["OPS-24"]
    assert (issue.category, issue.resolution) == ("done", "Done")  # done, no longer dropped
    again = await ActivityEnvironment().run(activities.sync_tickets, tickets)
    assert (again.pushed, again.changed) == ([], [])
    await activities.aclose()
