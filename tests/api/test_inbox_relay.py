"""The inbox and its relay over the real Temporal dev server: webhooks commit and answer at once, the
relay makes the reports — also when Temporal was unreachable when they came — once each, in order."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.app.worker import build_worker
from postmortem.config import InboxSettings, PagerDutySettings, StoreSettings, TemporalSettings
from postmortem.incident.teams_file import parse_teams
from postmortem.models import Postmortem, Status
from postmortem.store.errors import NotFound
from postmortem.store.inbox import InboxEntry, InboxState, NewDelivery
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import OPSGENIE_TOKEN, PD_SECRET, TEAMS, Api, relaying
from tests.api.test_webhooks import draft_of, signed
from tests.factories import pagerduty_resolved_body
from tests.fixtures import fixture_json
from tests.support import eventually, free_port

# Short backoff, so an entry that met a dead Temporal is retried soon after it is back.
FAST_RETRY = InboxSettings(retry_initial_seconds=0.1, retry_max_seconds=0.5, poll_seconds=0.2)


def resolve_body(incident_id: str, event_id: str | None = None) -> bytes:
    payload = json.loads(pagerduty_resolved_body(incident_id))
    payload["event"]["id"] = event_id or f"01{incident_id}"
    return json.dumps(payload).encode()


def relay_settings(tmp_path: Path) -> Settings:
    return Settings(
        store=StoreSettings(data_dir=tmp_path),
        pagerduty=PagerDutySettings(webhook_secrets=[PD_SECRET]),
        temporal=TemporalSettings(task_queue=f"inbox-{uuid.uuid4().hex}"),
        inbox=FAST_RETRY,
    )


def http_client(services: Services) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(services), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def entries_of(store: Store, incident_id: str) -> list[InboxEntry]:
    items, _ = await store.inbox.list(limit=200)
    return sorted((e for e in items if e.incident_key == f"pagerduty:{incident_id}"), key=lambda e: e.id)


async def all_done(store: Store, incident_ids: list[str]) -> list[InboxEntry]:
    async def check() -> list[InboxEntry] | None:
        found = [entry for incident in incident_ids for entry in await entries_of(store, incident)]
        return found if found and all(entry.state == InboxState.DONE for entry in found) else None

    return await eventually(check)


async def drafted(store: Store, pm_id: str) -> Postmortem:
    async def check() -> Postmortem | None:
        try:
            pm = await store.postmortems.get(pm_id)
        except NotFound:
            return None
        return pm if pm.status == Status.DRAFT else None

    return await eventually(check)


async def started_input(env: WorkflowEnvironment, workflow_id: str) -> dict:
    """The workflow input as Temporal stored it (what every replay decodes again)."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return json.loads(started.input.payloads[0].data)


async def test_deliveries_taken_while_temporal_is_unreachable_become_reports(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    settings = relay_settings(tmp_path)
    teams = parse_teams(TEAMS)
    dead = TemporalGateway(f"127.0.0.1:{free_port()}", "default", settings.temporal.task_queue)
    incidents = [f"PDOWN{index}" for index in range(5)]
    async with http_client(Services(settings=settings, store=sqlite_store, temporal=dead, teams=teams)) as http:
        async with relaying(sqlite_store, dead, settings):
            for incident in incidents:
                body = resolve_body(incident)
                began = time.monotonic()
                answer = await http.post("/webhooks/pagerduty", content=body, headers=signed(body))
                elapsed = time.monotonic() - began
                assert answer.status_code == 202, answer.text
                assert answer.json()["postmortems"][0]["outcome"] == "queued"
                assert elapsed < 1.0, f"the ack took {elapsed:.3f} s with Temporal unreachable"

            async def retried() -> bool:
                # While Temporal is away the relay probes with the oldest delivery, backing off; the
                # others wait untried in the inbox. Every one stays pending.
                entries = [entry for incident in incidents for entry in await entries_of(sqlite_store, incident)]
                return (
                    len(entries) == 5
                    and all(entry.state == InboxState.PENDING for entry in entries)
                    and entries[0].attempts >= 2
                    and "unreachable" in (entries[0].last_error or "")
                )

            await eventually(retried)
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["inbox"]["backlog"] == 5
            assert ready.json()["inbox"]["oldest_age_seconds"] > 0

    # Temporal reachable again: a relay with the right address drains what queued meanwhile.
    good = TemporalGateway("unused", "default", settings.temporal.task_queue, client=dev_env.client)
    worker = build_worker(
        dev_env.client, task_queue=settings.temporal.task_queue, store=sqlite_store, teams=teams, settings=settings
    )
    async with worker, relaying(sqlite_store, good, settings):
        for incident in incidents:
            assert (await drafted(sqlite_store, f"pagerduty-{incident}")).version == 1
        done = await all_done(sqlite_store, incidents)
        assert [entry.result["outcome"] for entry in done if entry.result] == ["accepted"] * 5
        # The raw payload never went to Temporal: the workflow input names the inbox entry instead...
        first = done[0]
        workflow_input = await started_input(dev_env, "postmortem-pagerduty-PDOWN0")
        assert workflow_input["delivery_id"] == str(first.id)
        assert workflow_input["event"]["incident"]["raw"] == {}
        # ...and the report keeps the delivery as evidence, read back from the inbox.
        pm = await sqlite_store.postmortems.get("pagerduty-PDOWN0")
        assert pm.incidents[0].raw == {"event": json.loads(resolve_body("PDOWN0"))["event"]}


async def test_duplicates_and_retries_make_one_report(api: Api) -> None:
    body = resolve_body("PDUP")
    retry_headers = {**signed(body), "X-Webhook-Id": "delivery-1"}
    answers = await asyncio.gather(
        *(api.http.post("/webhooks/pagerduty", content=body, headers=retry_headers) for _ in range(4))
    )
    assert {answer.status_code for answer in answers} == {202}
    # The same delivery id with a re-signed body is the same delivery; a second event of the incident is new.
    edited = resolve_body("PDUP", event_id="01PDUP-EDITED")
    same_delivery = await api.http.post(
        "/webhooks/pagerduty", content=edited, headers={**signed(edited), "X-Webhook-Id": "delivery-1"}
    )
    second = resolve_body("PDUP", event_id="01PDUP-SECOND")
    second_event = await api.http.post("/webhooks/pagerduty", content=second, headers=signed(second))
    assert (same_delivery.status_code, second_event.status_code) == (202, 202)

    await draft_of(api, "pagerduty-PDUP")
    entries = await all_done(api.store, ["PDUP"])
    assert [entry.event_id for entry in entries] == ["01PDUP", "01PDUP-SECOND"]
    assert entries[0].delivery_id == "delivery-1"
    assert [entry.result["outcome"] for entry in entries if entry.result] == ["accepted", "accepted"]
    assert (await api.store.postmortems.owner_of("pagerduty", "PDUP")) == "pagerduty-PDUP"
    # A retry once relayed is answered with what Temporal said, not "queued".
    late = await api.http.post("/webhooks/pagerduty", content=body, headers=retry_headers)
    assert late.json()["postmortems"][0] | {"event_id": None} == {
        "postmortem_id": "pagerduty-PDUP",
        "workflow_id": "postmortem-pagerduty-PDUP",
        "outcome": "accepted",
        "event_type": "incident.resolved",
        "event_id": None,
    }


async def test_deliveries_of_one_incident_are_relayed_in_arrival_order(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    settings = relay_settings(tmp_path)
    teams = parse_teams(TEAMS)
    gateway = TemporalGateway("unused", "default", settings.temporal.task_queue, client=dev_env.client)
    services = Services(settings=settings, store=sqlite_store, temporal=gateway, teams=teams)
    async with http_client(services) as http:
        # Committed while no relay runs (as in a process that has just started), then relayed.
        for event_id in ("01ORDER-A", "01ORDER-B", "01ORDER-C"):
            body = resolve_body("PORDER", event_id=event_id)
            assert (await http.post("/webhooks/pagerduty", content=body, headers=signed(body))).status_code == 202
        other = resolve_body("PORDER2")
        assert (await http.post("/webhooks/pagerduty", content=other, headers=signed(other))).status_code == 202
    worker = build_worker(
        dev_env.client, task_queue=settings.temporal.task_queue, store=sqlite_store, teams=teams, settings=settings
    )
    async with worker, relaying(sqlite_store, gateway, settings):
        entries = await all_done(sqlite_store, ["PORDER"])
        await all_done(sqlite_store, ["PORDER2"])
    assert [entry.event_id for entry in entries] == ["01ORDER-A", "01ORDER-B", "01ORDER-C"]
    done_at = [entry.done_at for entry in entries if entry.done_at is not None]
    assert len(set(done_at)) == 3 and done_at == sorted(done_at)  # one after the other, never together
    assert (await sqlite_store.postmortems.get("pagerduty-PORDER")).version == 1


async def test_an_entry_that_can_never_succeed_is_kept_as_failed(api: Api) -> None:
    unreadable = NewDelivery(
        source="pagerduty",
        event_id="E-BROKEN",
        incident_key="pagerduty:PBROKEN",
        delivery={"kind": "incident_event", "event": {"source": "pagerduty", "no": "incident"}},
    )
    [receipt] = await api.store.inbox.add(b"{}", {}, [unreadable], datetime.now(UTC))

    async def failed() -> InboxEntry | None:
        entry = await api.store.inbox.get(receipt.entry.id)
        return entry if entry.state == InboxState.FAILED else None

    entry = await eventually(failed)
    assert "no longer reads as an incident event" in (entry.last_error or "")
    assert entry.attempts == 1  # not retried: retrying cannot help

    listed = await api.http.get("/api/inbox", params={"state": "failed"}, headers=api.auth())
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [entry.id]
    assert listed.json()["counts"]["failed"] == 1


async def test_a_linked_report_whose_workflow_ended_fails_the_update_with_its_reason(api: Api) -> None:
    body = resolve_body("PGONEA")
    await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    pm = await draft_of(api, "pagerduty-PGONEA")
    linked = await api.http.post(
        f"/api/postmortems/{pm.id}/incidents",
        json={"source": "pagerduty", "incident_id": "PGONEB"},
        headers=api.auth(Role.EDITOR),
    )
    assert linked.status_code == 200, linked.text
    await api.env.client.get_workflow_handle(pm.workflow_id).terminate(reason="test: the report's run ended")

    second = resolve_body("PGONEB")
    answer = await api.http.post("/webhooks/pagerduty", content=second, headers=signed(second))
    assert answer.json()["postmortems"][0]["outcome"] == "linked"
    assert answer.json()["postmortems"][0]["postmortem_id"] == pm.id

    async def failed() -> InboxEntry | None:
        entries = await entries_of(api.store, "PGONEB")
        return entries[0] if entries and entries[0].state == InboxState.FAILED else None

    entry = await eventually(failed)
    assert "workflow has finished" in (entry.last_error or "")
    assert (await api.store.postmortems.get(pm.id)).status == Status.DRAFT  # the report itself is untouched


async def test_the_inbox_listing_is_for_admins_pages_and_hides_payloads(api: Api) -> None:
    for index in range(3):
        body = resolve_body(f"PLIST{index}")
        assert (await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))).status_code == 202
    await all_done(api.store, [f"PLIST{index}" for index in range(3)])

    assert (await api.http.get("/api/inbox", headers=api.auth(Role.REVIEWER))).status_code == 403
    assert (await api.http.get("/api/inbox")).status_code == 401
    first = await api.http.get("/api/inbox", params={"limit": 2}, headers=api.auth())
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["incident_key"] for item in page["items"]] == ["pagerduty:PLIST2", "pagerduty:PLIST1"]
    assert page["counts"] == {"pending": 0, "done": 3, "failed": 0}
    item = page["items"][0]
    assert item["state"] == "done" and item["result"]["outcome"] == "accepted" and item["attempts"] == 1
    assert "body" not in item and "incident_raw" not in item and item["delivery"]["event"]["incident"]["raw"] == {}
    rest = await api.http.get("/api/inbox", params={"limit": 2, "cursor": page["next_cursor"]}, headers=api.auth())
    assert [item["incident_key"] for item in rest.json()["items"]] == ["pagerduty:PLIST0"]
    assert rest.json()["next_cursor"] is None
    pending = await api.http.get("/api/inbox", params={"state": "pending"}, headers=api.auth())
    assert pending.json()["items"] == []
    for bad in ({"state": "lost"}, {"cursor": "abc"}, {"cursor": "0"}, {"limit": 0}, {"limit": 201}):
        assert (await api.http.get("/api/inbox", params=bad, headers=api.auth())).status_code == 422, bad

    ready = await api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["inbox"] == {"backlog": 0, "oldest_age_seconds": 0.0}


async def test_opsgenie_closes_go_through_the_inbox_too(api: Api) -> None:
    payload = fixture_json("opsgenie_webhook_close.json")
    payload["alert"]["alertId"] = "inbox-alert"
    answer = await api.http.post("/webhooks/opsgenie", json=payload, headers={"X-Postmortem-Token": OPSGENIE_TOKEN})
    assert answer.status_code == 202 and answer.json()["postmortems"][0]["outcome"] == "queued"
    await draft_of(api, "opsgenie-inbox-alert")
    [entry] = [e for e in (await api.store.inbox.list(limit=200))[0] if e.incident_key == "opsgenie:inbox-alert"]
    assert entry.state == InboxState.DONE
    # The token is a secret: the inbox keeps no header that carries it.
    assert OPSGENIE_TOKEN not in json.dumps(entry.model_dump(mode="json"))
    assert entry.headers["content-type"] == "application/json"
