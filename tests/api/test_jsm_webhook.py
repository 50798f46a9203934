"""Jira Service Management Operations end to end through the API: the real Webhook-integration body on
`/webhooks/jsm` becomes a report whose timeline holds the alert's logs and notes from the loopback JSM
Operations API (every page), on the dev Temporal with a running worker; bad tokens and bodies get
clear answers; JSM refusing us for good is a problem on the report, and one retry after the fix
gathers the evidence."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from postmortem.config import JsmSettings
from postmortem.evidence.models import EvidenceSource
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import Api, running_api
from tests.fakes.jsm import FakeJsm, jsm_app
from tests.fakes.serve import serve_app
from tests.fixtures import fixture_json
from tests.support import eventually

TOKEN = "jsm-webhook-token-for-tests"
ALERT = "052652ac-5d1c-464a-812a-7dd18bbfba8c"  # the fixture's alert
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest_asyncio.fixture(scope="module")
async def jsm_server() -> AsyncIterator[tuple[FakeJsm, str]]:
    state = FakeJsm()
    async with serve_app(jsm_app(state)) as base:
        yield state, base


@contextlib.asynccontextmanager
async def jsm_api(
    env: WorkflowEnvironment, store: Store, tmp_path: Path, server: tuple[FakeJsm, str]
) -> AsyncIterator[tuple[Api, FakeJsm]]:
    fake, base = server
    fake.reset()
    jsm = JsmSettings(
        api_url=base, cloud_id=fake.cloud_id, email=fake.email, api_token=fake.api_token, webhook_token=TOKEN
    )
    async with running_api(env, store, tmp_path, jsm=jsm) as api:
        yield api, fake


def close_of(alert_id: str) -> dict[str, Any]:
    payload = fixture_json("jsm_webhook_close.json")
    payload["alert"]["alertId"] = alert_id
    return payload


async def timeline_of(api: Api, pm_id: str, *, complete: bool = True) -> dict[str, Any]:
    """The report's timeline once its JSM gather is in the state wanted."""

    async def check() -> dict[str, Any] | None:
        answer = await api.http.get(
            f"/api/postmortems/{pm_id}/timeline", params={"limit": 500}, headers=api.auth(Role.VIEWER)
        )
        if answer.status_code != 200:
            return None
        body = answer.json()
        states = {s["source"]: s["state"] for s in body["sources"]}
        return body if states.get("jsm") == ("complete" if complete else "failed") else None

    return await eventually(check, timeout=30)


async def test_a_jsm_close_becomes_a_report_with_the_alerts_logs_and_notes(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, jsm_server: tuple[FakeJsm, str]
) -> None:
    async with jsm_api(dev_env, sqlite_store, tmp_path, jsm_server) as (api, fake):
        alert = fake.add_alert(ALERT, logs=230, notes=3)
        answer = await api.http.post("/webhooks/jsm", json=fixture_json("jsm_webhook_close.json"), headers=BEARER)
        assert answer.status_code == 202, answer.text
        (started,) = answer.json()["postmortems"]
        assert started["postmortem_id"] == f"jsm-{ALERT}"
        assert started["workflow_id"] == f"postmortem-jsm-{ALERT}"

        timeline = await timeline_of(api, f"jsm-{ALERT}")
        jsm = [item for item in timeline["items"] if item["source"] == "jsm"]
        assert len(jsm) == 233  # every log of three pages, and the notes
        assert {item["text"] for item in jsm} >= {log["log"] for log in alert.logs} | {n["note"] for n in alert.notes}
        assert {item["kind"] for item in jsm} >= {"triggered", "acknowledged", "escalated", "resolved", "note"}
        status = next(s for s in timeline["sources"] if s["source"] == "jsm")
        assert status == {"source": "jsm", "incident_id": ALERT, "state": "complete", "entries": 233, "detail": None}

        pages = fake.served(ALERT, "/logs")  # links.next followed to the end, each page once
        assert [p.params.get("after") for p in pages] == [None, alert.logs[99]["_key"], alert.logs[199]["_key"]]
        assert all(p.headers["authorization"] == fake.authorization for p in fake.requests)

        report = (await api.http.get(f"/api/postmortems/jsm-{ALERT}", headers=api.auth(Role.VIEWER))).json()
        assert report["problems"] == []
        handle = api.env.client.get_workflow_handle(f"postmortem-jsm-{ALERT}")
        history = await handle.fetch_history()
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert "gather_jsm" in scheduled and "gather_opsgenie" not in scheduled

        again = await api.http.post("/webhooks/jsm", json=fixture_json("jsm_webhook_close.json"), headers=BEARER)
        assert again.status_code == 202 and again.json()["postmortems"][0]["postmortem_id"] == f"jsm-{ALERT}"


async def test_tokens_and_bodies_get_clear_answers_and_nothing_is_stored(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, jsm_server: tuple[FakeJsm, str]
) -> None:
    async with jsm_api(dev_env, sqlite_store, tmp_path, jsm_server) as (api, _):
        payload = close_of("rejected-alert")
        refused = {
            "none": {},
            "wrong bearer": {"Authorization": "Bearer not-the-token"},
            "wrong header": {"X-Postmortem-Token": "not-the-token"},
            "basic, not bearer": {"Authorization": f"Basic {TOKEN}"},
        }
        for name, headers in refused.items():
            answer = await api.http.post("/webhooks/jsm", json=payload, headers=headers)
            assert answer.status_code == 401, name
            assert answer.json()["detail"], name
        in_url = await api.http.post(f"/webhooks/jsm?token={TOKEN}", json=payload)
        assert in_url.status_code == 401 and "Bearer" in in_url.json()["detail"]

        assert (await api.http.post("/webhooks/jsm", content=b"{not json", headers=BEARER)).status_code == 400
        no_alert = await api.http.post("/webhooks/jsm", json={"action": "Close"}, headers=BEARER)
        assert no_alert.status_code == 422 and "alert" in no_alert.json()["detail"]
        unsafe = close_of("../etc/passwd")
        assert (await api.http.post("/webhooks/jsm", json=unsafe, headers=BEARER)).status_code == 422
        huge = json.dumps({**payload, "padding": "x" * 300_000}).encode()
        too_big = await api.http.post("/webhooks/jsm", content=huge, headers=BEARER)
        assert too_big.status_code == 413
        assert await api.store.postmortems.owner_of("jsm", "rejected-alert") is None

        ack = await api.http.post(
            "/webhooks/jsm",
            json=fixture_json("jsm_webhook_acknowledge.json"),
            headers={"X-Postmortem-Token": TOKEN},
        )
        assert ack.status_code == 202 and ack.json()["status"] == "ignored"
        assert ack.json()["ignored"][0]["event_type"] == "Acknowledge"


async def test_jsm_webhooks_are_refused_until_configured(api: Api) -> None:
    answer = await api.http.post("/webhooks/jsm", json=close_of("x"), headers=BEARER)
    assert answer.status_code == 503 and "POSTMORTEM_JSM_WEBHOOK_TOKEN" in answer.json()["detail"]


@pytest.mark.parametrize("status", [401, 403])
async def test_jsm_refusing_us_is_a_problem_in_its_words_and_a_retry_gathers(
    status: int, dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, jsm_server: tuple[FakeJsm, str]
) -> None:
    async with jsm_api(dev_env, sqlite_store, tmp_path, jsm_server) as (api, fake):
        alert_id = f"refused-{status}-{uuid.uuid4().hex[:8]}"
        fake.add_alert(alert_id, logs=4, notes=1)
        fake.fail_with(status)
        answer = await api.http.post("/webhooks/jsm", json=close_of(alert_id), headers=BEARER)
        assert answer.status_code == 202, answer.text
        pm_id = f"jsm-{alert_id}"
        failed = await timeline_of(api, pm_id, complete=False)
        assert not [item for item in failed["items"] if item["source"] == "jsm"]

        async def problem() -> dict[str, Any] | None:
            report = (await api.http.get(f"/api/postmortems/{pm_id}", headers=api.auth(Role.VIEWER))).json()
            return next((p for p in report["problems"] if (p["step"], p["target"]) == ("gather", "jsm")), None)

        found = await eventually(problem, timeout=30)
        assert found["state"] == "open" and f"JSM Operations answered {status}" in found["message"]
        words = "Client must be authenticated" if status == 401 else "You are not allowed to view this alert."
        assert words in found["message"]

        fake.heal()
        retry = await api.http.post(
            f"/api/postmortems/{pm_id}/problems/{found['id']}/retry", headers=api.auth(Role.EDITOR)
        )
        assert retry.status_code == 202, retry.text
        healed = await timeline_of(api, pm_id)
        assert len([item for item in healed["items"] if item["source"] == "jsm"]) == 5

        async def resolved() -> bool:
            got = await problem()
            return bool(got and got["state"] == "resolved")

        await eventually(resolved, timeout=30)


async def test_a_jsm_alert_linked_to_a_report_is_read_from_the_api_and_gathered(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, jsm_server: tuple[FakeJsm, str]
) -> None:
    async with jsm_api(dev_env, sqlite_store, tmp_path, jsm_server) as (api, fake):
        own = f"linking-{uuid.uuid4().hex[:12]}"  # workflow ids outlive a test on the shared dev server
        fake.add_alert(own, logs=2)
        first = await api.http.post("/webhooks/jsm", json=close_of(own), headers=BEARER)
        assert first.status_code == 202
        await timeline_of(api, f"jsm-{own}")
        other = f"linked-{uuid.uuid4().hex[:12]}"
        fake.add_alert(other, logs=3, notes=1)
        linked = await api.http.post(
            f"/api/postmortems/jsm-{own}/incidents",
            json={"source": "jsm", "incident_id": other},
            headers=api.auth(Role.EDITOR),
        )
        assert linked.status_code == 200, linked.text
        assert linked.json()["metrics"]["incident_count"] == 2
        report = await api.store.postmortems.get(f"jsm-{own}")
        joined = next(i for i in report.incidents if i.id == other)
        assert joined.title == fixture_json("jsm_ops_get_alert_response.json")["message"]  # from GET …/alerts/{id}
        assert fake.requests[-1].headers["authorization"] == fake.authorization

        async def gathered() -> bool:
            entries = await api.store.evidence.entries(f"jsm-{own}", sources=[EvidenceSource.JSM])
            return len([e for e in entries if e.incident_id == other]) == 4

        await eventually(gathered, timeout=30)
