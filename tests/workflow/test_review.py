"""The review lifecycle on the time-skipping server: every transition, every refusal, reminders on
durable timers, and Updates racing each other."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from postmortem.app.settings import Settings
from postmortem.app.worker import build_worker
from postmortem.config import SlackSettings
from postmortem.incident.teams_file import parse_teams
from postmortem.models import Status
from postmortem.report.formatting import format_local
from postmortem.review.lifecycle import Actor, Decision
from postmortem.store.store import Store
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import DecisionRequest, PostmortemWorkflowInput, SubmitRequest, TransitionRequest
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.fakes.serve import serve_app
from tests.fakes.slack import FakeSlack, slack_app
from tests.support import eventually

TEAMS = """
[default]
slack_channel = "C0INCIDENTS"
remind_submit_hours = 48
remind_reviewers_hours = 24
publish_deadline_days = 14

[services.pig208]
owners = ["owner@example.com"]

[slack_users]
"owner@example.com" = "U0OWNER"
"alice@example.com" = "U0ALICE"
"""
EDITOR = Actor(name="editor@example.com", role="editor")
ALICE = Actor(name="alice@example.com", role="reviewer")
BOB = Actor(name="bob@example.com", role="viewer")
ADMIN = Actor(name="admin@example.com", role="admin")


@dataclass
class Running:
    env: WorkflowEnvironment
    store: Store
    slack: FakeSlack
    handle: WorkflowHandle
    postmortem_id: str

    async def update(self, update, request):
        return await self.handle.execute_update(update, request)

    async def refused(self, update, request) -> str:
        before = await self.store.review.get(self.postmortem_id)
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await self.handle.execute_update(update, request)
        assert await self.store.review.get(self.postmortem_id) == before  # nothing changed
        return str(failure.value.cause)


@pytest_asyncio.fixture
async def running(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[Running]:
    async with review_workflow(time_skipping_env, sqlite_store) as started:
        yield started


@pytest_asyncio.fixture
async def own_clock(own_time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[Running]:
    """The review workflow on a time-skipping server of its own (skipping days)."""
    async with review_workflow(own_time_skipping_env, sqlite_store) as started:
        yield started


@contextlib.asynccontextmanager
async def review_workflow(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[Running]:
    slack = FakeSlack()
    slack.channels["C0INCIDENTS"] = []
    async with serve_app(slack_app(slack)) as url:
        task_queue = f"review-{uuid.uuid4().hex}"
        settings = Settings(slack=SlackSettings(api_url=f"{url}/api", bot_token=slack.token))
        async with build_worker(
            time_skipping_env.client,
            task_queue=task_queue,
            store=sqlite_store,
            teams=parse_teams(TEAMS),
            settings=settings,
        ):
            incident = f"PREV{uuid.uuid4().hex[:6].upper()}"
            pm_id = postmortem_id_for("pagerduty", incident)
            handle = await time_skipping_env.client.start_workflow(
                PostmortemWorkflow.run,
                PostmortemWorkflowInput(
                    postmortem_id=pm_id, event=pagerduty_event(incident, resolved_at=datetime.now(UTC))
                ),
                id=workflow_id_for(pm_id),
                task_queue=task_queue,
            )
            await eventually(lambda: _ready(handle))
            try:
                yield Running(time_skipping_env, sqlite_store, slack, handle, pm_id)
            finally:
                try:
                    await handle.terminate("test over")
                except RPCError as exc:  # the test let it finish: nothing left to stop
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        raise


async def _ready(handle: WorkflowHandle) -> bool:
    return await handle.query(PostmortemWorkflow.review) is not None


async def test_submit_approve_publish_with_exports_and_one_announcement(running: Running) -> None:
    review = await running.update(
        PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name, BOB.name])
    )
    assert review.status == Status.IN_REVIEW and [r.reviewer for r in review.reviewers] == [ALICE.name, BOB.name]
    review = await running.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE, comment="LGTM"))
    assert review.status == Status.IN_REVIEW and review.reviewers[0].decision == Decision.APPROVED
    review = await running.update(PostmortemWorkflow.approve, DecisionRequest(actor=BOB))
    assert review.status == Status.PUBLISHED and review.published_count == 1 and review.public_slug

    stored = await running.store.review.get(running.postmortem_id)
    assert stored.status == Status.PUBLISHED
    assert [(t.action, t.by, t.from_status, t.to_status) for t in stored.history] == [
        ("submit", EDITOR.name, Status.DRAFT, Status.IN_REVIEW),
        ("approve", ALICE.name, Status.IN_REVIEW, Status.IN_REVIEW),
        ("approve", BOB.name, Status.IN_REVIEW, Status.PUBLISHED),
    ]
    assert (await running.store.postmortems.get(running.postmortem_id)).status == Status.PUBLISHED

    async def exported() -> bool:  # publishing is a step of the run, after the Update answered
        formats = ("md", "html", "json", "pdf", "public")
        return all([await running.store.review.get_export(running.postmortem_id, f) is not None for f in formats])

    await eventually(exported)
    assert await running.store.review.public_by_slug(review.public_slug) is not None
    await eventually(lambda: _posted(running, 1))
    [announced] = _announcements(running)
    assert announced["channel"] == "C0INCIDENTS"
    assert (await running.handle.describe()).typed_search_attributes  # status recorded for the UI


async def test_every_invalid_transition_is_refused_and_changes_nothing(running: Running) -> None:
    assert "IN_REVIEW" in await running.refused(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
    assert "PUBLISHED" in await running.refused(PostmortemWorkflow.unpublish, TransitionRequest(actor=ADMIN))
    assert "PUBLISHED" in await running.refused(PostmortemWorkflow.archive, TransitionRequest(actor=ADMIN))
    assert "submit it first" in await running.refused(PostmortemWorkflow.publish, TransitionRequest(actor=ADMIN))
    assert "reviewer" in await running.refused(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[]))
    assert "editor" in await running.refused(
        PostmortemWorkflow.submit, SubmitRequest(actor=BOB, reviewers=[ALICE.name])
    )
    await running.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    assert "DRAFT" in await running.refused(
        PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name])
    )
    assert "not a reviewer" in await running.refused(PostmortemWorkflow.approve, DecisionRequest(actor=BOB))
    assert "comment" in await running.refused(PostmortemWorkflow.request_changes, DecisionRequest(actor=ALICE))
    assert "waiting for approval" in await running.refused(PostmortemWorkflow.publish, TransitionRequest(actor=ADMIN))


async def test_changes_requested_then_republished_after_a_correction(running: Running) -> None:
    await running.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    back = await running.update(
        PostmortemWorkflow.request_changes, DecisionRequest(actor=ALICE, comment="Root cause is too vague")
    )
    assert back.status == Status.DRAFT and back.history[-1].comment == "Root cause is too vague"
    await running.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    published = await running.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
    assert published.status == Status.PUBLISHED
    await eventually(lambda: _posted(running, 1))  # announced before it is withdrawn (else it is not, rightly)
    assert "admin" in await running.refused(
        PostmortemWorkflow.unpublish, TransitionRequest(actor=Actor(name="e", role="editor"))
    )
    draft = await running.update(PostmortemWorkflow.unpublish, TransitionRequest(actor=ADMIN))
    assert draft.status == Status.DRAFT
    again = await running.update(PostmortemWorkflow.publish, TransitionRequest(actor=ADMIN))
    assert (
        again.status == Status.PUBLISHED and again.published_count == 2 and again.public_slug == published.public_slug
    )
    archived = await running.update(PostmortemWorkflow.archive, TransitionRequest(actor=ADMIN))
    assert archived.status == Status.ARCHIVED
    await running.handle.result()  # archived: the run completes, its steps done
    assert len(_announcements(running)) == 2  # one announcement per publication


async def test_racing_updates_publish_once(running: Running) -> None:
    await running.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name, BOB.name]))
    results = await asyncio.gather(
        running.handle.execute_update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE)),
        running.handle.execute_update(PostmortemWorkflow.approve, DecisionRequest(actor=BOB)),
        return_exceptions=True,
    )
    assert all(not isinstance(r, BaseException) for r in results), results
    final = await running.store.review.get(running.postmortem_id)
    assert final.status == Status.PUBLISHED and final.published_count == 1
    assert [t.to_status for t in final.history].count(Status.PUBLISHED) == 1
    await eventually(lambda: _posted(running, 1))
    assert len(_announcements(running)) == 1
    for _ in range(3):  # two admins unpublishing at the same moment: exactly one wins, every time
        racing = await asyncio.gather(
            *(
                running.handle.execute_update(PostmortemWorkflow.unpublish, TransitionRequest(actor=ADMIN))
                for _ in range(2)
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(r, WorkflowUpdateFailedError) for r in racing) == 1, racing
        await running.update(PostmortemWorkflow.publish, TransitionRequest(actor=ADMIN))
    final = await running.store.review.get(running.postmortem_id)
    assert [t.action for t in final.history].count("unpublish") == 3


async def test_reminders_fire_on_durable_timers(own_clock: Running) -> None:
    running = own_clock

    async def planned():
        return await running.store.meetings.get(running.postmortem_id)

    meeting = await eventually(planned)  # planned right after the draft
    everything = lambda: [m["text"] for m in running.slack.posted]  # noqa: E731
    reminded = lambda: [t for t in everything() if t.startswith("Reminder:")]  # noqa: E731
    texts = lambda: [t for t in reminded() if "review meeting is at" not in t]  # noqa: E731
    await running.env.sleep(timedelta(hours=47))
    assert texts() == []
    await running.env.sleep(timedelta(hours=2))
    await eventually(lambda: _reminded(texts, 1))
    assert "<@U0OWNER> The post-mortem draft has not been submitted" in texts()[0]  # people mapped to Slack
    await running.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
    await running.env.sleep(timedelta(hours=23))
    assert len(texts()) == 1
    await running.env.sleep(timedelta(hours=2))
    await eventually(lambda: _reminded(texts, 2))
    assert "waiting for your review" in texts()[1] and "<@U0ALICE>" in texts()[1]
    await running.env.sleep(timedelta(hours=24))
    await eventually(lambda: _reminded(texts, 3))  # every 24 hours while undecided
    await running.env.sleep(timedelta(days=12))

    async def deadline_told() -> bool:
        return any("not published 14 days" in t for t in texts())

    await eventually(deadline_told)
    # The owner was also reminded of the review meeting, once, a day before it.
    meeting_reminders = [t for t in everything() if "review meeting is at" in t]
    assert (
        len(meeting_reminders) == 1 and format_local(meeting.start, "UTC") in meeting_reminders[0]
    )  # in the report's zone


async def _posted(running: Running, count: int) -> bool:
    return len(_announcements(running)) >= count


async def _reminded(texts: Callable[[], list[str]], count: int) -> bool:
    return len(texts()) >= count


def _announcements(running: Running) -> list[dict[str, Any]]:
    return [m for m in running.slack.posted if "Post-mortem published" in m["text"]]
