"""Evidence gathering inside PostmortemWorkflow, against loopback PagerDuty and Opsgenie servers."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from postmortem.activities.gather import GatherActivities, GatherInput
from postmortem.app.settings import Settings
from postmortem.app.worker import WORKFLOWS, build_worker
from postmortem.config import AlertmanagerSettings, HttpSettings, OpsgenieSettings, PagerDutySettings, SlackSettings
from postmortem.evidence.models import EntryKind, EvidenceSource, GatherState
from postmortem.incident.teams import TeamsConfig
from postmortem.models import Postmortem, Status
from postmortem.review.lifecycle import Actor
from postmortem.review.problems import ProblemState
from postmortem.store.postmortems import NotFound
from postmortem.store.store import Store
from postmortem.workflows.drafting import LEAN_PATCH
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import PostmortemWorkflowInput, RetryProblemRequest
from postmortem.workflows.postmortem_workflow import RESPONDERS_PATCH, PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.fakes.opsgenie import FakeOpsgenie, opsgenie_app
from tests.fakes.pagerduty import FakePagerDuty, pagerduty_app
from tests.fakes.serve import serve_app
from tests.fixtures import fixture_json
from tests.support import eventually

START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class Sources:
    pagerduty: FakePagerDuty
    opsgenie: FakeOpsgenie
    settings: Settings

    def activities(self, store: Store) -> GatherActivities:
        s = self.settings
        return GatherActivities(store.evidence, pagerduty=s.pagerduty, opsgenie=s.opsgenie, http=s.http)


@pytest_asyncio.fixture(scope="module")
async def servers() -> AsyncIterator[tuple[FakePagerDuty, str, FakeOpsgenie, str]]:
    pd, og = FakePagerDuty(), FakeOpsgenie()
    async with serve_app(pagerduty_app(pd)) as pd_url, serve_app(opsgenie_app(og)) as og_url:
        yield pd, pd_url, og, og_url


@pytest_asyncio.fixture
async def sources(servers) -> Sources:
    pd, pd_url, og, og_url = servers
    pd.reset()
    og.reset()
    return Sources(
        pd,
        og,
        Settings(
            pagerduty=PagerDutySettings(api_url=pd_url, api_token=pd.token),
            opsgenie=OpsgenieSettings(api_url=og_url, api_key=og.api_key),
            http=HttpSettings(timeout_seconds=2),
        ),
    )


@contextlib.asynccontextmanager
async def worker_for(
    env: WorkflowEnvironment, store: Store, settings: Settings, teams: TeamsConfig | None = None
) -> AsyncIterator[str]:
    task_queue = f"gather-{uuid.uuid4().hex}"
    async with build_worker(
        env.client, task_queue=task_queue, store=store, teams=teams or TeamsConfig(), settings=settings
    ):
        yield task_queue


async def start_and_draft(env: WorkflowEnvironment, store: Store, task_queue: str, incident_id: str) -> Postmortem:
    pm_id = postmortem_id_for("pagerduty", incident_id)
    await env.client.start_workflow(
        PostmortemWorkflow.run,
        PostmortemWorkflowInput(postmortem_id=pm_id, event=pagerduty_event(incident_id)),
        id=workflow_id_for(pm_id),
        task_queue=task_queue,
    )

    async def drafted() -> Postmortem | None:
        try:
            return await store.postmortems.get(pm_id)
        except NotFound:
            return None

    return await eventually(drafted, timeout=30)


async def run_postmortem(
    env: WorkflowEnvironment, store: Store, settings: Settings, incident_id: str, teams: TeamsConfig | None = None
) -> Postmortem:
    async with worker_for(env, store, settings, teams) as task_queue:
        return await start_and_draft(env, store, task_queue, incident_id)


def section(pm: Postmortem, key: str) -> str:
    return next(s.body for s in pm.sections if s.key == key)


async def test_the_draft_timeline_is_built_from_pagerduty_evidence(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, sources: Sources
) -> None:
    fake = sources.pagerduty.add_incident("PGATHER1", log_entries=250, alerts=2, notes=2, start=START)
    pm = await run_postmortem(time_skipping_env, sqlite_store, sources.settings, "PGATHER1")

    stored = await sqlite_store.evidence.entries(pm.id, sources=[EvidenceSource.PAGERDUTY])
    assert len(stored) == 250 + 2 + 2 and len({e.key for e in stored}) == len(stored)
    pages = [r.params["offset"] for r in sources.pagerduty.requests if r.path.endswith("/log_entries")]
    assert pages == [str(offset) for offset in range(0, 300, 100)]
    assert all(
        r.headers["authorization"] == f"Token token={sources.pagerduty.token}" for r in sources.pagerduty.requests
    )

    lines = section(pm, "timeline").splitlines()
    assert 5 <= len(lines) <= 15, lines
    assert any("Triggered" in line for line in lines) and "Resolved" in lines[-1]
    assert any("Alert fired" in line for line in lines)
    first_ack = min(e.at for e in stored if e.kind == EntryKind.ACKNOWLEDGED)
    detected = min(e.at for e in stored if e.kind in (EntryKind.ALERT_FIRED, EntryKind.TRIGGERED))
    assert pm.metrics.detected_at == detected
    assert pm.metrics.time_to_acknowledge_seconds == int((first_ack - detected).total_seconds())
    assert pm.metrics.started_at == min(e.at for e in stored if e.kind == EntryKind.TRIGGERED)
    last_resolve = max(e.at for e in stored if e.kind == EntryKind.RESOLVED)
    assert pm.incidents[0].resolved_at is not None
    assert pm.metrics.closed_at == max(last_resolve, pm.incidents[0].resolved_at)
    statuses = {s.source: s for s in await sqlite_store.evidence.statuses(pm.id)}
    assert statuses[EvidenceSource.PAGERDUTY].state == GatherState.COMPLETE
    assert statuses[EvidenceSource.SLACK].state == GatherState.NOT_CONFIGURED
    assert fake.incident["id"] == "PGATHER1"


async def test_an_unreadable_source_is_named_in_the_timeline_and_not_retried(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, sources: Sources
) -> None:
    sources.pagerduty.add_incident("PGATHER401", log_entries=10, start=START)
    revoked = sources.settings.pagerduty.model_copy(update={"api_token": SecretStr("revoked-token")})
    settings = sources.settings.model_copy(update={"pagerduty": revoked})
    pm = await run_postmortem(time_skipping_env, sqlite_store, settings, "PGATHER401")
    timeline = section(pm, "timeline")
    assert "pagerduty could not be read for incident PGATHER401" in timeline
    assert "401" in timeline and "Authentication failed" in timeline
    assert len(sources.pagerduty.requests) == 1  # a 401 is permanent: asked once
    assert pm.status == Status.DRAFT  # the draft is written with what we know


async def test_rate_limits_and_server_errors_are_retried_without_duplicates(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, sources: Sources
) -> None:
    sources.pagerduty.add_incident("PGATHER429", log_entries=120, start=START)
    sources.pagerduty.ratelimit_reset = 1
    sources.pagerduty.fail_next = [429, 500]
    pm = await run_postmortem(time_skipping_env, sqlite_store, sources.settings, "PGATHER429")
    stored = await sqlite_store.evidence.entries(pm.id, sources=[EvidenceSource.PAGERDUTY])
    assert len(stored) == 120
    offsets = [r.params["offset"] for r in sources.pagerduty.requests if r.path.endswith("/log_entries")]
    assert offsets == ["0", "0", "0", "100"]  # 429, then 500, then the two pages
    assert "could not be read" not in section(pm, "timeline")


async def test_a_slow_source_does_not_hold_the_draft_and_completes_it_later(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, sources: Sources
) -> None:
    sources.pagerduty.add_incident("PGATHERSLOW", log_entries=30, start=START)
    sources.pagerduty.delay_seconds = 1.0
    settings = sources.settings.model_copy(update={"http": HttpSettings(timeout_seconds=5)})
    async with worker_for(time_skipping_env, sqlite_store, settings, TeamsConfig(gather_deadline_seconds=0)) as queue:
        pm = await start_and_draft(time_skipping_env, sqlite_store, queue, "PGATHERSLOW")
        assert "pagerduty is still being gathered" in section(pm, "timeline")
        assert pm.version == 1

        async def completed() -> Postmortem | None:
            current = await sqlite_store.postmortems.get(pm.id)
            return current if current.version > 1 else None

        done = await eventually(completed, timeout=30)
    assert "still being gathered" not in section(done, "timeline")
    assert done.metrics.started_at == START


async def test_opsgenie_logs_and_notes_are_gathered(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, sources: Sources
) -> None:
    payload = fixture_json("opsgenie_webhook_close.json")
    alert_id = payload["alert"]["alertId"]
    sources.opsgenie.add_alert(alert_id, logs=150, notes=3, start=START)
    activities = sources.activities(sqlite_store)
    result = await ActivityEnvironment().run(
        activities.gather_opsgenie, GatherInput(postmortem_id="opsgenie-x", incident_id=alert_id)
    )
    assert result.state == GatherState.COMPLETE and result.entries == 153
    again = await ActivityEnvironment().run(
        activities.gather_opsgenie, GatherInput(postmortem_id="opsgenie-x", incident_id=alert_id)
    )
    assert again.entries == 153  # a retry from the start adds nothing twice
    await activities.aclose()


async def test_a_retried_gather_resumes_from_its_heartbeat(sqlite_store: Store, sources: Sources) -> None:
    sources.pagerduty.add_incident("PRESUME", log_entries=1_000, start=START)
    activities = sources.activities(sqlite_store)
    environment = ActivityEnvironment()
    environment.info = environment.info.__class__(
        **{**environment.info.__dict__, "heartbeat_details": [{"phase": 0, "cursor": "600"}]}
    )
    beats: list[object] = []
    environment.on_heartbeat = lambda *details: beats.append(details[0])
    result = await environment.run(
        activities.gather_pagerduty, GatherInput(postmortem_id="pagerduty-PRESUME", incident_id="PRESUME")
    )
    offsets = [r.params["offset"] for r in sources.pagerduty.requests if r.path.endswith("/log_entries")]
    assert offsets == ["600", "700", "800", "900"]  # not from 0 again
    assert result.entries == 400
    assert beats[0] == {"phase": 0, "cursor": "700"} and beats[-1] == {"phase": 3, "cursor": None}
    await activities.aclose()


async def test_transient_errors_become_retryable_with_the_upstream_delay(sqlite_store: Store, sources: Sources) -> None:
    sources.pagerduty.add_incident("PDELAY", log_entries=5, start=START)
    sources.pagerduty.ratelimit_reset = 7
    sources.pagerduty.fail_next = [429]
    activities = sources.activities(sqlite_store)
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.gather_pagerduty, GatherInput(postmortem_id="pagerduty-PDELAY", incident_id="PDELAY")
        )
    assert not raised.value.non_retryable and raised.value.next_retry_delay == timedelta(seconds=7)
    [status] = await sqlite_store.evidence.statuses("pagerduty-PDELAY")
    assert status.state == GatherState.PENDING and "429" in (status.detail or "")
    await activities.aclose()


async def test_slack_messages_of_the_linked_channel_join_the_timeline(sqlite_store: Store) -> None:
    """The V2 capture links its Slack thread; only messages inside the incident's window are read."""
    from postmortem.activities.gather import GatherSlackInput
    from postmortem.webhooks.pagerduty import parse_pagerduty
    from tests.fakes.slack import FakeSlack, make_messages, slack_app

    [event] = parse_pagerduty(fixture_json("pagerduty_v2_incident_resolve.json"))
    incident = event.incident  # type: ignore[union-attr]
    assert incident.created_at is not None
    slack = FakeSlack()
    before = make_messages(3, incident.created_at - timedelta(hours=5), user="UEARLY")
    during = make_messages(4, incident.created_at + timedelta(seconds=30))
    during[1]["text"] = "Rolled back the deploy, errors dropping"
    slack.channels["C6975FLAZ"] = before + during
    async with serve_app(slack_app(slack)) as url:
        activities = GatherActivities(
            sqlite_store.evidence,
            slack=SlackSettings(api_url=f"{url}/api", bot_token=slack.token),
            alertmanager=AlertmanagerSettings(margin_minutes=30),
        )
        result = await ActivityEnvironment().run(
            activities.gather_slack,
            GatherSlackInput(
                postmortem_id="pagerduty-PRORDTY",
                incident_id=incident.id,
                links=[link.url for link in incident.links],
                start=incident.created_at,
                end=incident.resolved_at,
            ),
        )
        await activities.aclose()
    assert result.state == GatherState.COMPLETE and result.entries == 4, result.detail
    stored = await sqlite_store.evidence.entries("pagerduty-PRORDTY", sources=[EvidenceSource.SLACK])
    assert {e.actor for e in stored} == {"U012AB3CDE"}  # the messages hours before are outside the window
    assert [e.kind for e in stored].count(EntryKind.MITIGATED) == 1
    assert all(r.params.get("channel") == "C6975FLAZ" or "channel" not in r.params for r in slack.requests)


async def test_a_source_that_cannot_be_read_is_a_problem_and_its_retry_completes_the_timeline(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, sources: Sources
) -> None:
    sources.pagerduty.add_incident("PGATHERFIX", log_entries=10, start=START)
    sources.pagerduty.fail_with(401)
    async with worker_for(time_skipping_env, sqlite_store, sources.settings) as queue:
        pm = await start_and_draft(time_skipping_env, sqlite_store, queue, "PGATHERFIX")
        assert "could not be read" in section(pm, "timeline")

        async def problem(state: ProblemState):
            found = [p for p in await sqlite_store.problems.list(pm.id) if p.step == "gather" and p.state == state]
            return found[0] if found else None

        failed = await eventually(lambda: problem(ProblemState.OPEN))
        assert failed.target == "pagerduty" and "Authentication failed" in failed.message
        sources.pagerduty.heal()
        handle = time_skipping_env.client.get_workflow_handle(pm.workflow_id)
        editor = Actor(name="editor@example.com", role="editor")
        await handle.execute_update(
            PostmortemWorkflow.retry_problem, RetryProblemRequest(actor=editor, problem_id=failed.id)
        )
        await eventually(lambda: problem(ProblemState.RESOLVED))

        async def refreshed() -> Postmortem | None:
            current = await sqlite_store.postmortems.get(pm.id)
            return current if "could not be read" not in section(current, "timeline") else None

        await eventually(refreshed, timeout=30)
    stored = await sqlite_store.evidence.entries(pm.id, sources=[EvidenceSource.PAGERDUTY])
    assert len(stored) >= 10


async def test_everyone_who_acted_is_a_responder_and_invited_to_the_review(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, sources: Sources
) -> None:
    # PagerDuty's own log entries: "Assigned to Wiley Jacobson by Laura Haley", "Acknowledged by Laura Haley".
    entries = [
        fixture_json(name)["messages"][0]["log_entries"][0]
        for name in ("pagerduty_v2_incident_assign.json", "pagerduty_v2_incident_acknowledge.json")
    ]
    sources.pagerduty.add_incident("PGATHERPEOPLE", log_entries=entries, start=START)
    teams = TeamsConfig(
        people={"PFBSJ2Z": "wiley@example.com", "Laura Haley": "laura@example.com", "PJ0LVEB": "pig@example.com"}
    )
    async with worker_for(time_skipping_env, sqlite_store, sources.settings, teams) as queue:
        pm = await start_and_draft(time_skipping_env, sqlite_store, queue, "PGATHERPEOPLE")
        meeting = await eventually(lambda: sqlite_store.meetings.get(pm.id), timeout=30)
        history = await time_skipping_env.client.get_workflow_handle(workflow_id_for(pm.id)).fetch_history()
    patches = [
        payload.data
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        for details in event.marker_recorded_event_attributes.details.values()
        for payload in details.payloads
    ]
    # The new path is taken (a lean first draft has responders-attend without asking), and it replays.
    assert any(LEAN_PATCH.encode() in data for data in patches)
    assert not any(RESPONDERS_PATCH.encode() in data for data in patches)
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)
    roles = {r.email: r.roles for r in pm.metrics.people}
    assert roles["wiley@example.com"] == ["assigned"] and roles["laura@example.com"] == ["acknowledged"]
    assert {"wiley@example.com", "laura@example.com", "pig@example.com"} <= {a.email for a in meeting.attendees}
