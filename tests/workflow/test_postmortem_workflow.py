"""PostmortemWorkflow on the time-skipping test server, with the real activities and a real store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from postmortem.activities.draft import DraftActivities, DraftPostmortemInput
from postmortem.app.worker import build_worker
from postmortem.incident.policy import decide
from postmortem.incident.teams import TeamsConfig
from postmortem.incident.teams_file import parse_teams
from postmortem.models import Language, Status, TemplateVariant
from postmortem.store.postmortems import PostmortemChanges, PostmortemFilter
from postmortem.store.store import Store
from postmortem.workflows.identity import STATUS_ATTRIBUTE, postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.support import eventually

TEAMS = """
[default]
language = "en"
timezone = "Europe/Berlin"

[default.policy]
otherwise = "skip"

[sre-china]
name = "SRE China"
language = "zh"
timezone = "Asia/Shanghai"

[services."pig208"]
team = "sre-china"
owners = ["lead@example.com"]
"""


class Running:
    def __init__(self, env: WorkflowEnvironment, store: Store, task_queue: str) -> None:
        self.env = env
        self.store = store
        self.task_queue = task_queue

    async def start(self, incident_id: str, **changes: object):
        event = pagerduty_event(incident_id, resolved_at=None, **changes)
        pm_id = postmortem_id_for("pagerduty", incident_id)
        handle = await self.env.client.start_workflow(
            PostmortemWorkflow.run,
            PostmortemWorkflowInput(postmortem_id=pm_id, event=event),
            id=workflow_id_for(pm_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        return pm_id, handle


@pytest_asyncio.fixture
async def running(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[Running]:
    task_queue = f"test-{uuid.uuid4().hex}"
    worker = build_worker(time_skipping_env.client, task_queue=task_queue, store=sqlite_store, teams=parse_teams(TEAMS))
    async with worker:
        yield Running(time_skipping_env, sqlite_store, task_queue)


async def test_resolved_incident_becomes_a_draft_in_the_teams_language(running: Running) -> None:
    pm_id, handle = await running.start("PWF1")
    assert await eventually(lambda: _status_is(handle, Status.DRAFT))
    pm = await running.store.postmortems.get(pm_id)
    assert pm.status == Status.DRAFT
    assert pm.team == "SRE China"  # found through the [services] mapping
    assert pm.language == Language.ZH and pm.timezone == "Asia/Shanghai"
    assert pm.variant == TemplateVariant.FULL  # high urgency → full report, by the default policy
    assert pm.sections[0].title == "摘要"
    assert pm.title == "2021-06-04 Test Incident"
    assert pm.metrics.closed_at == datetime(2021, 6, 4, 13, 16, 53, 816000, tzinfo=UTC)
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING  # waits for the review steps
    assert description.typed_search_attributes.get(STATUS_ATTRIBUTE) == "DRAFT"


async def test_policy_skip_records_the_decision_and_completes(running: Running) -> None:
    pm_id, handle = await running.start(
        "PWF2", urgency="low", service={"id": "POTHER", "summary": "batch", "type": "service_reference"}
    )
    result = await handle.result()
    assert result.status == Status.SKIPPED
    pm = await running.store.postmortems.get(pm_id)
    assert pm.status == Status.SKIPPED
    assert pm.decision is not None and "skip" in pm.decision.reasons[0]


async def test_duplicate_delivery_lands_on_the_same_run(running: Running) -> None:
    pm_id, first = await running.start("PWF3")
    _, second = await running.start("PWF3")
    assert second.first_execution_run_id == first.first_execution_run_id
    await eventually(lambda: _status_is(first, Status.DRAFT))
    listed, _ = await running.store.postmortems.list(PostmortemFilter(incident_id="PWF3"))
    assert [pm.id for pm in listed] == [pm_id]


async def test_work_waits_for_a_worker_and_resumes_on_a_new_one(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store
) -> None:
    """Accepted with no worker up (a crashed worker): the draft appears once any worker returns."""
    task_queue = f"test-{uuid.uuid4().hex}"
    runner = Running(time_skipping_env, sqlite_store, task_queue)
    pm_id, handle = await runner.start("PWF4")
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    async with build_worker(time_skipping_env.client, task_queue=task_queue, store=sqlite_store, teams=TeamsConfig()):
        await eventually(lambda: _status_is(handle, Status.DRAFT))
    assert (await sqlite_store.postmortems.get(pm_id)).status == Status.DRAFT


async def test_draft_activity_retry_keeps_the_first_result(sqlite_store: Store) -> None:
    """A retry after 'stored but not acknowledged' must neither duplicate nor overwrite."""
    teams = parse_teams(TEAMS)
    event = pagerduty_event("PWF5")
    team = teams.resolve(event.incident)
    input = DraftPostmortemInput(
        postmortem_id="pagerduty-PWF5",
        workflow_id="postmortem-pagerduty-PWF5",
        incident=event.incident,
        team=team,
        decision=decide([event.incident], team.policy),
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    activities = DraftActivities(sqlite_store.postmortems, sqlite_store.evidence)
    first = await ActivityEnvironment().run(activities.draft_postmortem, input)
    await sqlite_store.postmortems.update(
        "pagerduty-PWF5", 1, PostmortemChanges(title="A person's title"), datetime.now(UTC)
    )
    second = await ActivityEnvironment().run(activities.draft_postmortem, input)
    assert first.created and not second.created
    assert (await sqlite_store.postmortems.get("pagerduty-PWF5")).title == "A person's title"


async def _status_is(handle, status: Status) -> bool:
    return await handle.query(PostmortemWorkflow.status) == status
