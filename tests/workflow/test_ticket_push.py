"""Status, owner and due date changed here reach the item's ticket (#16, ticket-push): the run's loop
pushes the item as it is, exactly what differs; a change that came from the ticket is not pushed back;
a tracker refusing for good is a problem on the report, the review goes on, and a retry pushes once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from postmortem.app.worker import WORKFLOWS
from postmortem.models import ActionItem, ActionItemStatus, Priority
from postmortem.review.problems import ProblemState
from postmortem.store.store import Store
from postmortem.workflows.inputs import ActionItemEdited
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.support import eventually
from tests.workflow.harness import EDITOR, TEAMS, World, drafted, world
from tests.workflow.test_problems import retry, review_and_publish

PUSH_TEAMS = TEAMS + '\n[tracker_users]\n"alice@example.com" = "octocat"\n"bob@example.com" = "hubot"\n'


@pytest_asyncio.fixture
async def report(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[World]:
    async with world(time_skipping_env, sqlite_store, teams=PUSH_TEAMS) as started:
        yield started


async def published_with_a_ticket(report: World) -> tuple[ActionItem, int]:
    await drafted(report)
    await report.store.postmortems.add_action_item(
        report.postmortem_id,
        description="Lower the DNS TTL",
        owner="alice@example.com",
        due_date=date(2030, 1, 10),
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        now=datetime.now(UTC),
    )
    await review_and_publish(report)

    async def ticketed() -> ActionItem | None:
        items = (await report.store.postmortems.get(report.postmortem_id)).action_items
        return items[0] if items and items[0].ticket_key else None

    item = await eventually(ticketed, timeout=30)
    assert item.ticket_key is not None
    return item, int(item.ticket_key.split("#")[-1])


async def change(report: World, item: ActionItem, **values: object) -> None:
    """A person's edit of the item, as the API makes it: stored, then the workflow told."""
    _, version = await report.store.postmortems.get_action_item(report.postmortem_id, item.id)
    await report.store.postmortems.update_action_item(
        report.postmortem_id, item.id, version, dict(values), datetime.now(UTC)
    )
    await report.handle.signal(PostmortemWorkflow.action_item_edited, ActionItemEdited(item_id=item.id, by=EDITOR.name))


async def test_a_change_here_reaches_the_ticket_once_and_a_change_from_there_is_not_pushed_back(
    report: World,
) -> None:
    item, number = await published_with_a_ticket(report)
    issue = report.github.issues[number]
    await change(report, item, status="COMPLETED", owner="bob@example.com", due_date=date(2030, 2, 1))

    async def pushed() -> bool:
        return issue["state"] == "closed" and [a["login"] for a in issue["assignees"]] == ["hubot"]

    await eventually(pushed, timeout=30)
    assert issue["state_reason"] == "completed" and "**Due:** 2030-02-01" in issue["body"]
    assert len(report.github.edits) == 1
    # The same signal again (an API retry): the ticket says so already, nothing is written.
    await report.handle.signal(PostmortemWorkflow.action_item_edited, ActionItemEdited(item_id=item.id, by=EDITOR.name))
    # The ticket is reopened there, and its webhook syncs the item (no signal: webhooks/router.py).
    report.github.reopen(number)
    await report.store.postmortems.sync_item_status(
        report.postmortem_id, item.id, ActionItemStatus.OPEN, datetime.now(UTC)
    )
    await change(report, item, priority="LOW")  # not pushed: priority is not the ticket's (a no-op push at most)

    path = f"/repos/{report.github.repo}/issues/{number}"

    async def settled() -> bool:  # each push reads the issue once before it decides what to write
        reads = sum(r.method == "GET" and r.path == path for r in report.github.requests)
        assert reads >= 3, [(r.method, r.path) for r in report.github.requests]
        return True

    await eventually(settled, timeout=30)
    assert len(report.github.edits) == 1 and issue["state"] == "open"  # no ping-pong
    assert await report.store.problems.list(report.postmortem_id) == []
    history = await report.handle.fetch_history()  # the pushes replay (ticket-push is patched in)
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)
    if name := os.environ.get("POSTMORTEM_RECORD_HISTORY"):
        (Path(__file__).resolve().parents[1] / "histories" / f"{name}.json").write_text(history.to_json())


async def test_a_tracker_that_refuses_the_push_is_a_problem_and_the_retry_pushes_once(report: World) -> None:
    item, number = await published_with_a_ticket(report)
    report.github.fail_with(410)
    await change(report, item, status="WONT_DO")
    problem = await report.problem("ticket")
    assert "Issues are disabled" in problem.message and report.github.issues[number]["state"] == "open"
    assert await report.running()
    report.github.heal()
    await retry(report, problem.id)
    await report.problem("ticket", state=ProblemState.RESOLVED)
    issue = report.github.issues[number]
    assert issue["state"] == "closed" and issue["state_reason"] == "not_planned" and len(report.github.edits) == 1
