"""A refusal reaches the API with its HTTP status: the validator's TransitionRefused travels through
Temporal and the gateway hands it over as UpdateRejected(status)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from postmortem.app.gateway import TemporalGateway, UpdateRejected
from postmortem.review.lifecycle import ReportFacts
from postmortem.store.store import Store
from postmortem.workflows.inputs import (
    DecisionRequest,
    RescheduleRequest,
    RetryProblemRequest,
    SubmitRequest,
    TransitionRequest,
)
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.workflow.harness import ADMIN, ALICE, BOB, EDITOR, World, drafted, world


@pytest_asyncio.fixture
async def report(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[World]:
    async with world(time_skipping_env, sqlite_store) as started:
        await drafted(started)
        yield started


async def rejected(report: World, update: object, request: object) -> UpdateRejected:
    gateway = TemporalGateway("unused", "default", report.task_queue, client=report.env.client)
    with pytest.raises(UpdateRejected) as refused:
        await gateway.update(report.handle.id, update, request, None)  # type: ignore[arg-type]
    return refused.value


async def test_each_refusal_carries_its_status(report: World) -> None:
    empty = ReportFacts(version=1, empty_required=["Root cause"])
    cases = [
        (PostmortemWorkflow.submit, SubmitRequest(actor=BOB, reviewers=[ALICE.name]), 403, "editor role"),
        (
            PostmortemWorkflow.submit,
            SubmitRequest(actor=EDITOR, reviewers=[ALICE.name], facts=empty),
            422,
            "Root cause",
        ),
        (PostmortemWorkflow.approve, DecisionRequest(actor=ALICE), 409, "IN_REVIEW"),
        (PostmortemWorkflow.archive, TransitionRequest(actor=ADMIN), 409, "PUBLISHED"),
        (PostmortemWorkflow.retry_problem, RetryProblemRequest(actor=EDITOR, problem_id="nope"), 404, "no problem"),
    ]
    for update, request, status, words in cases:
        refusal = await rejected(report, update, request)
        assert (refusal.status, words in str(refusal)) == (status, True), (update, str(refusal))
    await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    threads = ReportFacts(version=1, open_threads=1)
    last = await rejected(report, PostmortemWorkflow.approve, DecisionRequest(actor=ALICE, facts=threads))
    assert last.status == 409 and "open comment threads" in str(last)


async def test_a_refusal_without_a_status_is_a_conflict(report: World) -> None:
    past = await rejected(
        report, PostmortemWorkflow.reschedule, RescheduleRequest(start=datetime(2020, 1, 1, tzinfo=UTC))
    )
    assert past.status == 409 and "in the past" in str(past)
