"""Action items become tickets exactly once, and the 30/60/90-day follow-up runs on the
time-skipping server: ticket closed upstream at day 20, an item overdue at day 60, a recurrence at
day 80, and the verdict written at day 90."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from postmortem.activities.tickets import PushTicketInput, TicketActivities, TicketsInput, marker_for
from postmortem.app.settings import Settings
from postmortem.app.temporal import ensure_search_attributes
from postmortem.app.worker import build_worker
from postmortem.config import GitHubSettings, ServerSettings, TicketsSettings
from postmortem.incident.teams import TeamsConfig
from postmortem.models import ActionItemStatus, Priority
from postmortem.store.store import Store
from postmortem.workflows.follow_up_workflow import FollowUpInput, FollowUpWorkflow
from tests.factories import new_postmortem, pagerduty_event
from tests.fakes.github import FakeGitHub, github_app
from tests.fakes.serve import serve_app
from tests.support import binary


@pytest_asyncio.fixture
async def github() -> AsyncIterator[tuple[FakeGitHub, Settings]]:
    fake = FakeGitHub()
    async with serve_app(github_app(fake)) as url:
        yield (
            fake,
            Settings(
                tickets=TicketsSettings(github=GitHubSettings(api_url=url, token=fake.token, repo=fake.repo)),
                server=ServerSettings(public_url="https://pm.example.com"),
            ),
        )


def trackers(store: Store, settings: Settings) -> TicketActivities:
    return TicketActivities(store, tickets=settings.tickets, server=settings.server)


async def seed(store: Store, incident: str, items: list[tuple[str, date | None]], now: datetime) -> str:
    pm, _ = await store.postmortems.create_if_absent(new_postmortem(pagerduty_event(incident).incident, created_at=now))
    for description, due in items:
        await store.postmortems.add_action_item(
            pm.id,
            description=description,
            owner="alice@example.com",
            due_date=due,
            priority=Priority.HIGH,
            status=ActionItemStatus.OPEN,
            now=now,
        )
    return pm.id


async def test_one_ticket_per_item_even_when_the_answer_is_lost(sqlite_store: Store, github) -> None:
    fake, settings = github
    now = datetime.now(UTC)
    pm_id = await seed(
        sqlite_store,
        "PTICKET",
        [("Lower the DNS TTL", now.date() + timedelta(days=14)), ("Alert on replication lag", None)],
        now,
    )
    fake.crash_after_create = True  # GitHub made the issue, but the answer never reached us
    activities = trackers(sqlite_store, settings)
    tickets = TicketsInput(postmortem_id=pm_id, tracker="github", accounts={"alice@example.com": "octocat"}, now=now)
    with pytest.raises(ApplicationError) as lost:  # the lost answer fails this attempt, as a crash would
        await ActivityEnvironment().run(activities.open_tickets, tickets)
    assert lost.value.type == "TrackerError" and not lost.value.non_retryable  # Temporal tries again
    fake.crash_after_create = False
    retried = await ActivityEnvironment().run(activities.open_tickets, tickets)  # the retry Temporal would run
    again = await ActivityEnvironment().run(activities.open_tickets, tickets)
    assert fake.created == 2 and len(fake.issues) == 2  # exactly one ticket per item
    assert len(retried.found) == 1 and len(retried.created) == 1 and again.created == again.found == []
    items = (await sqlite_store.postmortems.get(pm_id)).action_items
    assert all(item.ticket_key and item.ticket_url and item.ticket_tracker == "github" for item in items)
    markers = {marker_for(pm_id, item.id) for item in items}
    # Each issue carries its item's marker line in the body, and one label of ours: no label per item.
    assert {
        m for m in markers for issue in fake.issues.values() if f"<!-- postmortem:{m} -->" in issue["body"]
    } == markers
    assert all([label["name"] for label in issue["labels"]] == ["postmortem"] for issue in fake.issues.values())
    assert set(fake.labels) == {"postmortem"}
    first = fake.payloads[0]
    assert first["assignees"] == ["octocat"] and "pm.example.com" in first["body"]


@pytest_asyncio.fixture
async def own_clock() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary("temporal-test-server")
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


async def test_ninety_days_of_follow_up_in_seconds(own_clock: WorkflowEnvironment, sqlite_store: Store, github) -> None:
    fake, settings = github
    env = own_clock
    published = await env.get_current_time()
    pm_id = await seed(
        sqlite_store,
        "PFOLLOW",
        [("Lower the DNS TTL", None), ("Alert on replication lag", published.date() + timedelta(days=45))],
        published,
    )
    await ActivityEnvironment().run(
        trackers(sqlite_store, settings).open_tickets,
        TicketsInput(postmortem_id=pm_id, tracker="github", now=published),
    )
    ttl_ticket = next(
        i for i in (await sqlite_store.postmortems.get(pm_id)).action_items if i.description == "Lower the DNS TTL"
    ).ticket_key
    assert ttl_ticket is not None
    task_queue = f"followup-{uuid.uuid4().hex}"
    async with build_worker(
        env.client, task_queue=task_queue, store=sqlite_store, teams=TeamsConfig(), settings=settings
    ):
        handle = await env.client.start_workflow(
            FollowUpWorkflow.run,
            FollowUpInput(
                postmortem_id=pm_id, published_at=published, tracker="github", accounts={"alice@example.com": "octocat"}
            ),
            id=f"followup-{pm_id}",
            task_queue=task_queue,
        )
        await env.sleep(timedelta(days=20))
        fake.close(int(ttl_ticket.lstrip("#").split("#")[-1]), "completed")  # done upstream at day 20
        await env.sleep(timedelta(days=60))
        # Day 80: the same service fails again; another service fails for an unrelated reason.
        await sqlite_store.postmortems.create_if_absent(
            new_postmortem(pagerduty_event("PAGAIN").incident, created_at=await env.get_current_time())
        )
        elsewhere = pagerduty_event("PELSE", service={"id": "PX", "summary": "billing", "type": "service_reference"})
        await sqlite_store.postmortems.create_if_absent(
            new_postmortem(elsewhere.incident, created_at=await env.get_current_time())
        )
        result = await handle.result()

    days = [check.day for check in result.checks]
    assert days == [30, 60, 90]
    day30, day60, day90 = result.checks
    assert day30.completed == 1 and day30.overdue == []  # synced from the closed ticket
    assert day60.overdue == ["Alert on replication lag"] and "alice@example.com" in day60.owners_to_remind
    assert day90.verdict is not None and day90.verdict["worked"] is False
    assert day90.verdict["recurrences"] == ["pagerduty-PAGAIN"]
    recorded = await sqlite_store.follow_ups.list(pm_id)
    assert [entry["day"] for entry in recorded] == [30, 60, 90] and recorded[-1]["verdict"]["worked"] is False
    items = {i.description: i for i in (await sqlite_store.postmortems.get(pm_id)).action_items}
    assert items["Lower the DNS TTL"].status == ActionItemStatus.COMPLETED
    assert items["Alert on replication lag"].status == ActionItemStatus.OPEN


async def test_the_same_cause_elsewhere_counts_as_a_recurrence(sqlite_store: Store, github) -> None:
    from postmortem.activities.tickets import FollowUpCheckInput
    from postmortem.store.postmortems import PostmortemChanges

    _, settings = github
    published = datetime.now(UTC) - timedelta(days=90)
    pm_id = await seed(sqlite_store, "PCAUSE", [], published)
    pm = await sqlite_store.postmortems.get(pm_id)
    await sqlite_store.postmortems.update(pm_id, pm.version, PostmortemChanges(cause_category="capacity"), published)
    other = pagerduty_event("PCAUSE2", service={"id": "PY", "summary": "search", "type": "service_reference"})
    stored, _ = await sqlite_store.postmortems.create_if_absent(new_postmortem(other.incident))
    await sqlite_store.postmortems.update(
        stored.id, stored.version, PostmortemChanges(cause_category="capacity"), datetime.now(UTC)
    )
    check = await ActivityEnvironment().run(
        trackers(sqlite_store, settings).follow_up_check,
        FollowUpCheckInput(postmortem_id=pm_id, day=90, published_at=published, final=True, now=datetime.now(UTC)),
    )
    assert check.verdict is not None and check.verdict["recurrences"] == [stored.id]
    assert check.verdict["worked"] is False and check.verdict["cause_category"] == "capacity"


async def test_a_sync_follows_a_ticket_that_changed_after_the_last_push(sqlite_store: Store, github) -> None:
    """Which side wins (#16), only the ticket changed: the item was set in progress here and pushed (GitHub
    shows it open: it has no "in progress"); a sync then leaves it be, as neither side moved since. Once
    the issue is closed on GitHub, the ticket changed after the last push and the item did not: the
    sync takes the ticket's state, as it always did."""
    fake, settings = github
    now = datetime.now(UTC)
    pm_id = await seed(sqlite_store, "PSYNCGH", [("Lower the DNS TTL", None)], now)
    activities = trackers(sqlite_store, settings)
    accounts = {"alice@example.com": "octocat"}
    tickets = TicketsInput(postmortem_id=pm_id, tracker="github", accounts=accounts, now=now)
    await ActivityEnvironment().run(activities.open_tickets, tickets)
    item = (await sqlite_store.postmortems.get(pm_id)).action_items[0]
    assert item.ticket_key is not None
    _, version = await sqlite_store.postmortems.get_action_item(pm_id, item.id)
    await sqlite_store.postmortems.update_action_item(pm_id, item.id, version, {"status": "IN_PROGRESS"}, now)
    await ActivityEnvironment().run(
        activities.push_ticket, PushTicketInput(postmortem_id=pm_id, item_id=item.id, accounts=accounts)
    )
    quiet = await ActivityEnvironment().run(activities.sync_tickets, tickets)
    assert (quiet.pushed, quiet.changed) == ([], [])
    assert (await sqlite_store.postmortems.get(pm_id)).action_items[0].status == ActionItemStatus.IN_PROGRESS

    fake.close(int(item.ticket_key.split("#")[-1]), "completed")
    synced = await ActivityEnvironment().run(activities.sync_tickets, tickets)
    assert (synced.pushed, synced.changed) == ([], [item.ticket_key])
    after = (await sqlite_store.postmortems.get(pm_id)).action_items[0]
    assert after.status == ActionItemStatus.COMPLETED and after.completed_at is not None
