"""No failure of the outside world ends a report: an invite, a reminder, the announcement or the tickets
failing for good is a problem on the report, in the upstream's own words, while the review goes on;
once the stand-in is healed, `retry_problem` delivers it exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from temporalio.client import WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from postmortem.app.temporal import ensure_search_attributes
from postmortem.models import ActionItemStatus, Priority, Status
from postmortem.review.problems import ProblemState
from postmortem.store.store import Store
from postmortem.workflows.inputs import DecisionRequest, RetryProblemRequest, SubmitRequest
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.support import binary, eventually
from tests.workflow.harness import ALICE, BOB, EDITOR, World, drafted, world


@pytest_asyncio.fixture
async def report(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[World]:
    async with world(time_skipping_env, sqlite_store) as started:
        yield started


@pytest_asyncio.fixture
async def refused_invite(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[World]:
    """A report whose SMTP relay refuses every recipient (550) from the start."""
    async with world(time_skipping_env, sqlite_store, broken=lambda inbox, *_: inbox.fail_with(550)) as started:
        yield started


async def review_and_publish(report: World) -> None:
    """The lifecycle, whatever is broken: submit, approve, published."""
    review = await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    assert review.status == Status.IN_REVIEW
    review = await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
    assert review.status == Status.PUBLISHED and (await report.store.review.get(report.postmortem_id)) == review

    async def exported() -> bool:
        return await report.store.review.get_export(report.postmortem_id, "html") is not None

    await eventually(exported, timeout=30)


async def retry(report: World, problem_id: str) -> None:
    retrying = await report.update(
        PostmortemWorkflow.retry_problem, RetryProblemRequest(actor=EDITOR, problem_id=problem_id)
    )
    assert retrying.id == problem_id and retrying.state == ProblemState.RETRYING


async def test_a_refused_invite_is_a_problem_the_review_goes_on_and_one_retry_delivers_it(
    refused_invite: World,
) -> None:
    report = refused_invite
    problem = await report.problem("invite", "email revision 0")
    assert "550" in problem.message and "Recipient address rejected" in problem.message
    assert problem.state == ProblemState.OPEN and problem.attempts == 1
    assert problem.workflow_id == report.handle.id
    assert report.inbox.invites() == [] and report.inbox.refused
    # The owner is told once, on the channel that is not the broken one (Slack, not email).
    told = lambda: [m["text"] for m in report.slack.posted if problem.id in m["text"]]  # noqa: E731
    await eventually(lambda: _some(told()))
    assert len(told()) == 1 and "invite" in told()[0]
    assert await report.running()

    await review_and_publish(report)
    assert await report.running()

    report.inbox.heal()
    await retry(report, problem.id)
    await report.problem("invite", "email revision 0", state=ProblemState.RESOLVED)
    assert report.inbox.invite_revisions() == 1  # delivered, once to each
    with pytest.raises(WorkflowUpdateFailedError) as again:  # a resolved problem is not retried
        await report.update(PostmortemWorkflow.retry_problem, RetryProblemRequest(actor=EDITOR, problem_id=problem.id))
    assert "resolved" in str(again.value.cause)
    assert report.inbox.invite_revisions() == 1


async def test_a_slack_channel_that_is_gone_is_a_problem_of_the_publication_and_the_retry_announces_once(
    report: World,
) -> None:
    await drafted(report)
    report.slack.fail_with("channel_not_found", path="/api/chat.postMessage")
    await review_and_publish(report)  # the exports and the public page exist all the same
    assert await report.store.review.get_export(report.postmortem_id, "public") is not None
    problem = await report.problem("publish", "C0INCIDENTS")
    assert "channel_not_found" in problem.message
    assert await report.running()
    # Told by email, Slack being the broken channel.
    mails = lambda: [  # noqa: E731
        m for m in report.inbox.messages if m.get_content_type() == "text/plain" and problem.id in m.get_content()
    ]
    await eventually(lambda: _some(mails()))
    assert len(mails()) == 1 and "publish" in str(mails()[0]["Subject"])

    report.slack.heal()
    await retry(report, problem.id)
    await report.problem("publish", "C0INCIDENTS", state=ProblemState.RESOLVED)
    assert len(report.announcements()) == 1


async def test_a_tracker_that_refuses_tickets_is_a_problem_and_the_retry_opens_one_ticket_per_item(
    report: World,
) -> None:
    await drafted(report)
    for description in ("Lower the DNS TTL", "Alert on replication lag"):
        await report.store.postmortems.add_action_item(
            report.postmortem_id,
            description=description,
            owner="alice@example.com",
            due_date=None,
            priority=Priority.HIGH,
            status=ActionItemStatus.OPEN,
            now=datetime.now(UTC),
        )
    report.github.fail_with(410)
    await review_and_publish(report)
    problem = await report.problem("tickets", "github")
    assert "Issues are disabled" in problem.message and report.github.issues == {}
    assert await report.running()

    report.github.heal()
    await retry(report, problem.id)
    await report.problem("tickets", "github", state=ProblemState.RESOLVED)
    assert len(report.github.issues) == 2 and report.github.created == 2


async def test_a_reminder_slack_refuses_is_a_problem_and_the_retry_sends_it_once(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store
) -> None:
    resolved = datetime.now(UTC) - timedelta(days=3)  # the draft is overdue at once: a reminder is due
    async with world(
        time_skipping_env,
        sqlite_store,
        resolved_at=resolved,
        broken=lambda _, slack, __: slack.fail_with("not_in_channel", path="/api/chat.postMessage"),
    ) as report:
        problem = await report.problem("notify", "reminder submit")
        assert "not_in_channel" in problem.message
        assert await report.running()
        review = await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[BOB.name]))
        assert review.status == Status.IN_REVIEW

        report.slack.heal()
        await retry(report, problem.id)
        await report.problem("notify", "reminder submit", state=ProblemState.RESOLVED)
        reminders = [m["text"] for m in report.slack.posted if "has not been submitted" in m["text"]]
        assert len(reminders) == 1


async def test_only_an_editor_retries_and_only_a_problem_of_this_report(refused_invite: World) -> None:
    report = refused_invite
    problem = await report.problem("invite")
    for request, words in (
        (RetryProblemRequest(actor=BOB, problem_id=problem.id), "editor role"),
        (RetryProblemRequest(actor=EDITOR, problem_id="not-a-problem"), "no problem"),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await report.update(PostmortemWorkflow.retry_problem, request)
        assert words in str(refused.value.cause)
    assert (await report.store.problems.get(report.postmortem_id, problem.id)).state == ProblemState.OPEN


async def _some(found: Sequence[object]) -> bool:
    return bool(found)


async def test_a_delivery_down_longer_than_its_retries_is_a_problem_too(sqlite_store: Store) -> None:
    """Slack answering 503 for more than a day: the reminder runs out of time, not the report."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary("temporal-test-server")
    )
    try:
        await ensure_search_attributes(env.client)
        async with world(
            env,
            sqlite_store,
            resolved_at=datetime.now(UTC) - timedelta(days=3),  # the submit reminder is due at once
            broken=lambda _, slack, __: slack.fail_with(503, path="/api/chat.postMessage"),
        ) as report:
            await eventually(lambda: _some(range(report.slack.refused)))  # the reminder met the outage
            for _ in range(5):  # a day and more, in steps (each retry on the way is a real request)
                await env.sleep(timedelta(hours=6))
            problem = await report.problem("notify", "reminder submit")
            assert "503" in problem.message and report.slack.refused > 1  # retried, then given up
            assert await report.running()
            review = await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[BOB.name]))
            assert review.status == Status.IN_REVIEW
    finally:
        await env.shutdown()
