"""JSM Operations evidence: the gather_jsm activity against the loopback JSM Operations API, and inside
PostmortemWorkflow for an incident that came through /webhooks/jsm (time-skipping server). The run's
history is replayed, and `POSTMORTEM_RECORD_JSM_HISTORY=1` keeps it as tests/histories/gather-jsm-v5.json."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from postmortem.activities.gather import GatherActivities, GatherInput
from postmortem.app.settings import Settings
from postmortem.app.worker import WORKFLOWS, build_worker
from postmortem.config import HttpSettings, JsmSettings
from postmortem.evidence.models import EvidenceSource, GatherState
from postmortem.incident.teams import TeamsConfig
from postmortem.models import IncidentEvent, Postmortem, Source
from postmortem.store.postmortems import NotFound
from postmortem.store.store import Store
from postmortem.webhooks.jsm import parse_jsm
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.fakes.jsm import FakeJsm, jsm_app
from tests.fakes.serve import serve_app
from tests.fixtures import fixture_json
from tests.support import eventually

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@dataclass
class World:
    fake: FakeJsm
    settings: Settings

    def activities(self, store: Store, api_token: str | None = None) -> GatherActivities:
        section = self.settings.jsm
        if api_token is not None:
            section = JsmSettings(**{**section.model_dump(), "api_token": SecretStr(api_token)})
        return GatherActivities(store.evidence, jsm=section, http=self.settings.http)


@pytest_asyncio.fixture(scope="module")
async def server() -> AsyncIterator[tuple[FakeJsm, str]]:
    fake = FakeJsm()
    async with serve_app(jsm_app(fake)) as url:
        yield fake, url


@pytest_asyncio.fixture
async def world(server: tuple[FakeJsm, str]) -> World:
    fake, url = server
    fake.reset()
    jsm = JsmSettings(api_url=url, cloud_id=fake.cloud_id, email=fake.email, api_token=fake.api_token)
    return World(fake, Settings(jsm=jsm, http=HttpSettings(timeout_seconds=2)))


def jsm_event(alert_id: str) -> IncidentEvent:
    payload = fixture_json("jsm_webhook_close.json")
    payload["alert"]["alertId"] = alert_id
    event = parse_jsm(payload)
    assert isinstance(event, IncidentEvent)
    return event


async def test_gather_jsm_stores_every_log_and_note_once(sqlite_store: Store, world: World) -> None:
    world.fake.add_alert("jsm-a1", logs=230, notes=2)
    activities = world.activities(sqlite_store)
    run = GatherInput(postmortem_id="jsm-jsm-a1", incident_id="jsm-a1")
    result = await ActivityEnvironment().run(activities.gather_jsm, run)
    assert (result.source, result.state, result.entries) == (EvidenceSource.JSM, GatherState.COMPLETE, 232)
    again = await ActivityEnvironment().run(activities.gather_jsm, run)
    assert again.entries == 232  # a retry from the start adds nothing twice
    stored = await sqlite_store.evidence.entries("jsm-jsm-a1", sources=[EvidenceSource.JSM])
    assert len({entry.key for entry in stored}) == 232
    await activities.aclose()


async def test_a_retried_gather_jsm_resumes_from_its_heartbeat(sqlite_store: Store, world: World) -> None:
    alert = world.fake.add_alert("jsm-resume", logs=450)
    activities = world.activities(sqlite_store)
    environment = ActivityEnvironment()
    cursor = f"after={alert.logs[299]['_key']}&size=100"
    environment.info = environment.info.__class__(
        **{**environment.info.__dict__, "heartbeat_details": [{"phase": 0, "cursor": cursor}]}
    )
    beats: list[object] = []
    environment.on_heartbeat = lambda *details: beats.append(details[0])
    result = await environment.run(activities.gather_jsm, GatherInput(postmortem_id="jsm-r", incident_id="jsm-resume"))
    afters = [r.params.get("after") for r in world.fake.served("jsm-resume", "/logs")]
    assert afters == [alert.logs[299]["_key"], alert.logs[399]["_key"]]  # not from the first page again
    assert result.entries == 150
    assert beats[-1] == {"phase": 2, "cursor": None}
    await activities.aclose()


async def test_gather_jsm_says_what_is_missing_or_refused(sqlite_store: Store, world: World) -> None:
    run = GatherInput(postmortem_id="jsm-f", incident_id="jsm-f")
    unconfigured = GatherActivities(sqlite_store.evidence, jsm=JsmSettings(webhook_token="only-the-webhook"))
    missing = await ActivityEnvironment().run(unconfigured.gather_jsm, run)
    assert missing.state == GatherState.NOT_CONFIGURED and "POSTMORTEM_JSM_API_TOKEN" in (missing.detail or "")

    world.fake.add_alert("jsm-f", logs=2)
    revoked = world.activities(sqlite_store, api_token="revoked")
    refused = await ActivityEnvironment().run(revoked.gather_jsm, run)
    assert refused.state == GatherState.FAILED
    assert "JSM Operations answered 401" in (refused.detail or "") and "authenticated" in (refused.detail or "")

    activities = world.activities(sqlite_store)
    world.fake.fail_next = [500]
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities.gather_jsm, run)
    assert not raised.value.non_retryable and raised.value.type == "UpstreamUnavailable"
    for each in (revoked, activities):
        await each.aclose()


async def run_jsm_incident(
    env: WorkflowEnvironment, store: Store, settings: Settings, alert_id: str
) -> WorkflowHistory:
    """A JSM Close through the workflow until its draft holds the JSM evidence; the run's history."""
    pm_id = postmortem_id_for(Source.JSM.value, alert_id)
    task_queue = f"jsm-{uuid.uuid4().hex}"
    async with build_worker(env.client, task_queue=task_queue, store=store, teams=TeamsConfig(), settings=settings):
        handle = await env.client.start_workflow(
            PostmortemWorkflow.run,
            PostmortemWorkflowInput(postmortem_id=pm_id, event=jsm_event(alert_id)),
            id=workflow_id_for(pm_id),
            task_queue=task_queue,
        )

        async def drafted() -> Postmortem | None:
            try:
                pm = await store.postmortems.get(pm_id)
            except NotFound:
                return None
            statuses = {s.source: s.state for s in await store.evidence.statuses(pm_id)}
            meeting = await handle.query(PostmortemWorkflow.meeting)
            return pm if statuses.get(EvidenceSource.JSM) == GatherState.COMPLETE and meeting is not None else None

        await eventually(drafted, timeout=30)
        return await handle.fetch_history()


async def test_a_jsm_incident_is_gathered_from_jsm_and_its_history_replays(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, world: World
) -> None:
    alert_id = "5f1b2c3d-jsm-gather"
    world.fake.add_alert(alert_id, logs=5, notes=1)
    history = await run_jsm_incident(time_skipping_env, sqlite_store, world.settings, alert_id)
    pm_id = f"jsm-{alert_id}"
    stored = await sqlite_store.evidence.entries(pm_id, sources=[EvidenceSource.JSM])
    assert len(stored) == 6 and all(entry.incident_id == alert_id for entry in stored)
    pm = await sqlite_store.postmortems.get(pm_id)
    assert pm.incidents[0].source == Source.JSM
    timeline = next(s.body for s in pm.sections if s.key == "timeline")
    assert "Acknowledged: Alert acknowledged via web — system" in timeline  # from JSM's log, not the webhook
    assert "Note: System downtime expected due to maintenance activities. — user@atlassian.com" in timeline
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    assert "gather_jsm" in scheduled and "gather_opsgenie" not in scheduled
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)
    if os.environ.get("POSTMORTEM_RECORD_JSM_HISTORY"):
        (HISTORIES / "gather-jsm-v5.json").write_text(history.to_json())
