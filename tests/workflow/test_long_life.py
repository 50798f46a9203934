"""A report's long life: approvals are of a version, the run continues as new before its history grows
large, it completes once archived, and deleting it ends its follow-ups too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio
from sqlalchemy import text
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from postmortem.activities.tickets import TicketActivities, TicketsInput
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.app.temporal import ensure_search_attributes
from postmortem.app.worker import WORKFLOWS, build_worker
from postmortem.config import GitHubSettings, TicketsSettings
from postmortem.incident.teams import TeamsConfig
from postmortem.models import ActionItemStatus, Priority, Status
from postmortem.review.lifecycle import Decision
from postmortem.review.problems import ProblemState
from postmortem.store.store import Store
from postmortem.workflows.follow_up_workflow import FollowUpInput, FollowUpResult, FollowUpWorkflow
from postmortem.workflows.inputs import (
    CancelRequest,
    DecisionRequest,
    RetryProblemRequest,
    ReviewersRequest,
    SubmitRequest,
    TransitionRequest,
)
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import new_postmortem, pagerduty_event
from tests.fakes.github import FakeGitHub, github_app
from tests.fakes.serve import serve_app
from tests.support import binary, eventually
from tests.workflow.harness import ADMIN, ALICE, BOB, EDITOR, World, drafted, edit, facts, world


@pytest_asyncio.fixture
async def report(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[World]:
    async with world(time_skipping_env, sqlite_store) as started:
        yield started


@pytest_asyncio.fixture
async def own_clock() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own: skipping days must not wait on other tests' workflows."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary("temporal-test-server")
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


async def test_an_edit_between_two_approvals_sends_the_first_back_and_the_approved_text_is_published(
    report: World,
) -> None:
    await drafted(report)
    await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name, BOB.name]))
    first = await facts(report)
    await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE, facts=first))

    approved_title = "Checkout outage: the approved title"
    version = await edit(report, approved_title)

    async def alice_pending() -> bool:  # as the API shows it: stored
        state = (await report.store.review.get(report.postmortem_id)).reviewer(ALICE.name)
        return state is not None and state.decision == Decision.PENDING

    await eventually(alice_pending)
    review = await report.handle.query(PostmortemWorkflow.review)
    assert review is not None and review.reviewer(ALICE.name).decision == Decision.PENDING  # type: ignore[union-attr]

    async def alice_told() -> bool:  # she hears her approval lapsed
        return any(
            ALICE.name in m["To"] and "approval" in m.get_content()
            for m in report.inbox.messages
            if m.get_content_type() == "text/plain"
        )

    await eventually(alice_told)

    review = await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=BOB, facts=await facts(report)))
    assert review.status == Status.IN_REVIEW
    read = await facts(report)
    await edit(report, "A later title nobody approved", tell=False)  # the signal of this edit was lost
    review = await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE, facts=read))
    assert review.status == Status.PUBLISHED and review.published_version == version

    async def exported() -> bytes | None:
        found = await report.store.review.get_export(report.postmortem_id, "md")
        return found[1] if found else None

    markdown = (await eventually(exported, timeout=30)).decode()
    assert approved_title in markdown and "nobody approved" not in markdown


async def test_an_approval_of_a_newer_version_sends_older_approvals_back_when_the_edit_signal_was_lost(
    report: World,
) -> None:
    await drafted(report)
    await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name, BOB.name]))
    await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE, facts=await facts(report)))
    await edit(report, "Changed after Alice approved", tell=False)
    review = await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=BOB, facts=await facts(report)))
    assert review.status == Status.IN_REVIEW
    assert review.reviewer(ALICE.name).decision == Decision.PENDING


async def test_reviewers_change_while_in_review_and_the_new_one_is_asked(report: World) -> None:
    await drafted(report)
    await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=["nobody@example.com"]))
    review = await report.update(
        PostmortemWorkflow.change_reviewers, ReviewersRequest(actor=EDITOR, reviewers=[ALICE.name])
    )
    assert [r.reviewer for r in review.reviewers] == [ALICE.name] and review.status == Status.IN_REVIEW

    async def asked() -> bool:
        return any(ALICE.name in m["To"] for m in report.inbox.messages if m.get_content_type() == "text/plain")

    await eventually(asked)
    review = await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
    assert review.status == Status.PUBLISHED


async def test_archived_the_run_completes(report: World) -> None:
    await drafted(report)
    await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
    await report.update(PostmortemWorkflow.archive, TransitionRequest(actor=ADMIN))
    result = await report.handle.result()
    assert result.status == Status.ARCHIVED
    assert (await report.handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert await report.store.review.get_export(report.postmortem_id, "public") is not None  # archive keeps it


async def test_deleting_a_published_report_ends_its_follow_ups(report: World) -> None:
    await drafted(report)
    await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
    follow_ups = report.env.client.get_workflow_handle(f"followup-{report.postmortem_id}", result_type=FollowUpResult)

    async def following() -> bool:
        try:
            return (await follow_ups.describe()).status == WorkflowExecutionStatus.RUNNING
        except Exception:  # not started yet
            return False

    await eventually(following, timeout=30)
    await report.update(PostmortemWorkflow.cancel, CancelRequest(reason="post-mortem deleted"))
    ended = await follow_ups.result()
    assert ended.cancelled and ended.checks == []
    assert (await follow_ups.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert (await report.handle.result()).postmortem_id == report.postmortem_id


async def test_an_archived_report_deleted_later_ends_its_follow_ups_through_the_gateway(report: World) -> None:
    """Its own run completed at ARCHIVED, so `cancel` cannot reach it: the API cancels the follow-ups."""
    await drafted(report)
    await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
    await report.update(PostmortemWorkflow.archive, TransitionRequest(actor=ADMIN))
    await report.handle.result()
    follow_ups = report.env.client.get_workflow_handle(f"followup-{report.postmortem_id}", result_type=FollowUpResult)
    gateway = TemporalGateway("unused", "default", report.task_queue, client=report.env.client)
    await gateway.cancel(follow_ups.id)
    assert (await follow_ups.result()).cancelled
    await gateway.cancel(follow_ups.id)  # no longer running: nothing to do, no error
    await gateway.cancel("followup-never-started")


async def test_two_hundred_updates_continue_as_new_with_the_state_intact(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store
) -> None:
    threshold = 120
    refusing = lambda inbox, *_: inbox.fail_with(550)  # noqa: E731
    async with world(time_skipping_env, sqlite_store, history_threshold=threshold, broken=refusing) as report:
        problem = await report.problem("invite")
        report.inbox.heal()
        first_run = (await report.handle.describe()).run_id
        for round in range(100):
            await report.update(
                PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name, BOB.name])
            )
            await report.update(
                PostmortemWorkflow.request_changes, DecisionRequest(actor=ALICE, comment=f"round {round}: not yet")
            )
        latest = report.env.client.get_workflow_handle(report.handle.id)

        async def continued() -> WorkflowExecutionDescription | None:
            # at the first quiet point: the 200 notices the decisions queued (notify-v2) are sent first
            description = await latest.describe()
            return description if description.run_id != first_run else None

        description = await eventually(continued, timeout=180)  # 200 notices first: slow on a busy machine
        assert description.status == WorkflowExecutionStatus.RUNNING
        history = await latest.fetch_history()
        assert len(history.events) < threshold + 40  # bounded: this run began at most one threshold ago
        assert history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)

        review = await latest.query(PostmortemWorkflow.review)
        assert review is not None and review.status == Status.DRAFT and len(review.history) == 200
        assert [r.reviewer for r in review.reviewers] == [ALICE.name, BOB.name]
        assert review.history[-1].comment == "round 99: not yet"
        assert review == await report.store.review.get(report.postmortem_id)
        [kept] = await latest.query(PostmortemWorkflow.problems)
        assert kept.id == problem.id and kept.state == ProblemState.OPEN
        meeting = await latest.query(PostmortemWorkflow.meeting)
        assert meeting is not None and meeting.sequence == 0

        retrying = await latest.execute_update(
            PostmortemWorkflow.retry_problem, RetryProblemRequest(actor=EDITOR, problem_id=problem.id)
        )
        assert retrying.state == ProblemState.RETRYING
        await report.problem("invite", state=ProblemState.RESOLVED)
        assert report.inbox.invite_revisions() == 1


async def test_a_follow_up_sync_that_fails_is_a_problem_and_it_ends_once_the_retry_worked(
    own_clock: WorkflowEnvironment, sqlite_store: Store
) -> None:
    env = own_clock
    published = await env.get_current_time()
    pm, _ = await sqlite_store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(f"PFUP{uuid.uuid4().hex[:6].upper()}").incident, created_at=published)
    )
    await sqlite_store.postmortems.add_action_item(
        pm.id,
        description="Lower the DNS TTL",
        owner="alice@example.com",
        due_date=None,
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        now=published,
    )
    github = FakeGitHub()
    async with serve_app(github_app(github)) as url:
        settings = Settings(
            tickets=TicketsSettings(github=GitHubSettings(api_url=url, token=github.token, repo=github.repo))
        )
        trackers = TicketActivities(sqlite_store, tickets=settings.tickets)
        await ActivityEnvironment().run(
            trackers.open_tickets, TicketsInput(postmortem_id=pm.id, tracker="github", now=published)
        )
        task_queue = f"followup-{uuid.uuid4().hex}"
        async with build_worker(
            env.client, task_queue=task_queue, store=sqlite_store, teams=TeamsConfig(), settings=settings
        ):
            handle = await env.client.start_workflow(
                FollowUpWorkflow.run,
                FollowUpInput(postmortem_id=pm.id, published_at=published, days=[30], tracker="github"),
                id=f"followup-{pm.id}",
                task_queue=task_queue,
            )
            github.fail_with(401)
            await env.sleep(timedelta(days=30))

            async def problem():
                found = [p for p in await sqlite_store.problems.list(pm.id) if p.step == "follow_up"]
                return found[0] if found else None

            failed = await eventually(problem, timeout=30)
            assert failed.workflow_id == handle.id and failed.state == ProblemState.OPEN
            assert "401" in failed.message or "Bad credentials" in failed.message
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING  # waits for the retry

            github.heal()
            retrying = await handle.execute_update(
                FollowUpWorkflow.retry_problem, RetryProblemRequest(actor=EDITOR, problem_id=failed.id)
            )
            assert retrying.state == ProblemState.RETRYING
            result = await handle.result()  # nothing left open: it ends
    assert [check.day for check in result.checks] == [30] and not result.cancelled
    assert (await sqlite_store.problems.get(pm.id, failed.id)).state == ProblemState.RESOLVED


async def test_a_follow_up_check_the_store_cannot_make_for_a_day_is_a_problem_and_the_retry_records_it(
    own_clock: WorkflowEnvironment, sqlite_store: Store
) -> None:
    """The verdict reads every related report; one row it cannot read (written by a newer release, say)
    fails the check for more than a day. The follow-ups then wait with a problem instead of failing."""
    env = own_clock
    published = await env.get_current_time()
    pm, _ = await sqlite_store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(f"PCHK{uuid.uuid4().hex[:6].upper()}").incident, created_at=published)
    )
    other, _ = await sqlite_store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(f"POTH{uuid.uuid4().hex[:6].upper()}").incident, created_at=published)
    )

    async def set_severity(value: str) -> None:
        async with sqlite_store.engine.begin() as connection:
            await connection.execute(
                text("UPDATE postmortems SET severity = :value WHERE id = :id"), {"value": value, "id": other.id}
            )

    await set_severity("SEV9")  # no such severity here: every listing of reports fails on this row
    task_queue = f"followup-{uuid.uuid4().hex}"
    async with build_worker(env.client, task_queue=task_queue, store=sqlite_store, teams=TeamsConfig()):
        handle = await env.client.start_workflow(
            FollowUpWorkflow.run,
            FollowUpInput(postmortem_id=pm.id, published_at=published, days=[30]),
            id=f"followup-{pm.id}",
            task_queue=task_queue,
        )
        await env.sleep(timedelta(days=30))
        for _ in range(5):  # the check's retries run out after a day, in steps (each a real attempt)
            await env.sleep(timedelta(hours=6))

        async def problem():
            found = [p for p in await sqlite_store.problems.list(pm.id) if p.target == "check, day 30"]
            return found[0] if found else None

        failed = await eventually(problem, timeout=60)
        assert failed.step == "follow_up" and failed.state == ProblemState.OPEN and "SEV9" in failed.message
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        assert await sqlite_store.follow_ups.list(pm.id) == []

        await set_severity(other.severity.value if other.severity else "SEV2")  # mended
        retrying = await handle.execute_update(
            FollowUpWorkflow.retry_problem, RetryProblemRequest(actor=EDITOR, problem_id=failed.id)
        )
        assert retrying.state == ProblemState.RETRYING
        result = await handle.result()
    assert [check.day for check in result.checks] == [30] and result.checks[0].verdict is not None
    assert [check["day"] for check in await sqlite_store.follow_ups.list(pm.id)] == [30]
    assert (await sqlite_store.problems.get(pm.id, failed.id)).state == ProblemState.RESOLVED
