"""Replay guards: the workflow code must still replay the histories of runs already in flight.

`tests/histories/*.json` are histories recorded from earlier versions of PostmortemWorkflow (see
`record_history` and `record_life` below). A change that breaks them needs `workflow.patched`.
`POSTMORTEM_RECORD_HISTORY=<name>` writes the whole life recorded by `test_a_whole_life_replays` to
`tests/histories/<name>.json`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from postmortem.app.worker import WORKFLOWS, build_worker
from postmortem.incident.teams import TeamsConfig
from postmortem.models import Status
from postmortem.review.problems import ProblemState
from postmortem.store.store import Store
from postmortem.workflows.inputs import (
    CommentPosted,
    DecisionRequest,
    PostmortemWorkflowInput,
    RetryProblemRequest,
    SubmitRequest,
    TransitionRequest,
)
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.support import eventually
from tests.workflow.harness import ADMIN, ALICE, BOB, EDITOR, edit, facts, world

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def _replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda path: path.stem)
async def test_recorded_histories_still_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    assert history.events, f"{path} holds no events"
    await _replayer().replay_workflow(history)


async def test_a_fresh_history_replays(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> None:
    history = await record_history(time_skipping_env, sqlite_store, "PREPLAY")
    await _replayer().replay_workflow(history)


async def test_a_whole_life_replays(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> None:
    history = await record_life(time_skipping_env, sqlite_store)
    await _replayer().replay_workflow(history)
    if os.environ.get("POSTMORTEM_RECORD_HISTORY"):
        (HISTORIES / f"{os.environ['POSTMORTEM_RECORD_HISTORY']}.json").write_text(history.to_json())


async def record_life(env: WorkflowEnvironment, store: Store) -> WorkflowHistory:
    """Every kind of step of the current shape: an invite refused (a problem), its retry, an edit between
    two approvals, messages to people (asked, mentioned, lapsed, published), the publication and its
    steps, the follow-up child, archive and the run's end."""
    async with world(env, store, broken=lambda inbox, *_: inbox.fail_with(550)) as report:
        problem = await report.problem("invite")
        report.inbox.heal()
        await report.update(PostmortemWorkflow.retry_problem, RetryProblemRequest(actor=EDITOR, problem_id=problem.id))
        await report.problem("invite", state=ProblemState.RESOLVED)
        await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name, BOB.name]))
        mention = CommentPosted(comment_id="c-1", by=ALICE.name, section="impact", mentions=[BOB.name], excerpt="?")
        await report.handle.signal(PostmortemWorkflow.comment_posted, mention)  # an @mention (notify-v2)
        await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE, facts=await facts(report)))
        await edit(report, "Edited between the approvals")  # the document_edited signal
        await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=BOB, facts=await facts(report)))
        await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE, facts=await facts(report)))
        await report.update(PostmortemWorkflow.archive, TransitionRequest(actor=ADMIN))
        assert (await report.handle.result()).status == Status.ARCHIVED
        assert [p.step for p in await store.problems.list(report.postmortem_id)] == ["invite"]  # nothing else failed
        return await report.handle.fetch_history()


async def record_history(env: WorkflowEnvironment, store: Store, incident_id: str) -> WorkflowHistory:
    task_queue = f"replay-{uuid.uuid4().hex}"
    async with build_worker(env.client, task_queue=task_queue, store=store, teams=TeamsConfig()):
        handle = await env.client.start_workflow(
            PostmortemWorkflow.run,
            PostmortemWorkflowInput(postmortem_id=f"pagerduty-{incident_id}", event=pagerduty_event(incident_id)),
            id=f"postmortem-pagerduty-{incident_id}",
            task_queue=task_queue,
        )
        await eventually(lambda: _drafted(handle))
        return await handle.fetch_history()


async def _drafted(handle) -> bool:
    """Drafted, and the review meeting planned and its invites handled: every step so far in history."""
    if (
        await handle.query(PostmortemWorkflow.status) != Status.DRAFT
        or await handle.query(PostmortemWorkflow.meeting) is None
    ):
        return False
    # The steps after the plan (the invites, on the channels this worker has) are done too.
    return not (await handle.describe()).raw_description.pending_activities
