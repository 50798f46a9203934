"""Webhook endpoints: signatures, tokens, formats, duplicates — through the real Temporal dev server."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from postmortem.models import Status
from postmortem.store.postmortems import NotFound, PostmortemFilter
from postmortem.store.tokens import Role
from tests.api.conftest import OPSGENIE_TOKEN, PD_SECRET, Api
from tests.factories import pagerduty_resolved_body
from tests.fixtures import fixture_bytes, fixture_json
from tests.support import eventually


def signed(body: bytes, secret: str = PD_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-PagerDuty-Signature": f"v1={digest}", "Content-Type": "application/json"}


async def draft_of(api: Api, pm_id: str):
    async def check():
        try:
            pm = await api.store.postmortems.get(pm_id)
        except NotFound:
            return None
        return pm if pm.status == Status.DRAFT else None

    return await eventually(check)


async def test_signed_v3_resolve_drafts_a_report_once(api: Api) -> None:
    body = pagerduty_resolved_body("PAPI1")
    response = await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["postmortems"][0]["postmortem_id"] == "pagerduty-PAPI1"
    pm = await draft_of(api, "pagerduty-PAPI1")
    assert pm.title == "2021-06-04 Test Incident" and pm.timezone == "Europe/Berlin"

    # The same delivery again (a retry), and a second resolve of the same incident: still one report.
    again = await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    assert again.status_code == 202
    other_event = json.loads(body)
    other_event["event"]["id"] = "01SECONDRESOLVE"
    other_body = json.dumps(other_event).encode()
    assert (
        await api.http.post("/webhooks/pagerduty", content=other_body, headers=signed(other_body))
    ).status_code == 202
    listed, _ = await api.store.postmortems.list(PostmortemFilter(incident_id="PAPI1"))
    assert len(listed) == 1 and listed[0].version == 1


async def test_rotated_secret_and_several_signatures(api: Api) -> None:
    body = pagerduty_resolved_body("PAPI2")
    header = f"v1={'0' * 64},{signed(body, 'older-secret')['X-PagerDuty-Signature']}"
    response = await api.http.post("/webhooks/pagerduty", content=body, headers={"X-PagerDuty-Signature": header})
    assert response.status_code == 202, response.text
    await draft_of(api, "pagerduty-PAPI2")


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        ({}, 400, "missing X-PagerDuty-Signature"),
        ({"X-PagerDuty-Signature": "sha256=abc"}, 400, "malformed"),
        ({"X-PagerDuty-Signature": "v1=" + "0" * 64}, 401, "no valid signature"),
    ],
)
async def test_bad_signatures_are_rejected_and_nothing_is_stored(api: Api, headers, status, says) -> None:
    body = pagerduty_resolved_body("PBADSIG")
    response = await api.http.post("/webhooks/pagerduty", content=body, headers=headers)
    assert response.status_code == status
    assert says in response.json()["detail"]
    assert await api.store.postmortems.owner_of("pagerduty", "PBADSIG") is None
    handle = api.env.client.get_workflow_handle("postmortem-pagerduty-PBADSIG")
    with pytest.raises(RPCError, match="not found"):
        await handle.describe()


async def test_signature_covers_the_raw_bytes(api: Api) -> None:
    body = pagerduty_resolved_body("PRAW")
    tampered = body.replace(b"Test Incident", b"Test Incidenz")
    response = await api.http.post("/webhooks/pagerduty", content=tampered, headers=signed(body))
    assert response.status_code == 401


async def test_bad_bodies_say_what_is_wrong(api: Api) -> None:
    for body, status, says in [
        (b"", 400, "empty request body"),
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"hello": 1}', 422, "not a PagerDuty webhook"),
        (b'{"event": {"id": "x"}}', 422, "event.event_type"),
    ]:
        response = await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
        assert response.status_code == status, (body, response.text)
        assert says in response.json()["detail"]


async def test_other_event_types_are_acknowledged_with_a_reason(api: Api) -> None:
    body = fixture_bytes("pagerduty_v3_incident_triggered.json")
    response = await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "ignored" and answer["postmortems"] == []
    assert "incident.triggered" in answer["ignored"][0]["reason"]


async def test_legacy_v2_resolve_starts_a_report(api: Api) -> None:
    body = fixture_bytes("pagerduty_v2_incident_resolve.json")
    response = await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    pm = await draft_of(api, "pagerduty-PRORDTY")
    assert pm.metrics.responders == ["Wiley Jacobson", "Laura Haley"]
    assert pm.metrics.time_to_resolve_seconds == 213


async def test_opsgenie_close_with_header_or_query_token(api: Api) -> None:
    payload = fixture_json("opsgenie_webhook_close.json")
    response = await api.http.post("/webhooks/opsgenie", json=payload, headers={"X-Postmortem-Token": OPSGENIE_TOKEN})
    assert response.status_code == 202, response.text
    pm = await draft_of(api, "opsgenie-052652ac-5d1c-464a-812a-7dd18bbfba8c")
    assert pm.metrics.duration_seconds == 183  # createdAt in ms, updatedAt in ns

    payload["alert"]["alertId"] = "second-alert"
    by_query = await api.http.post(f"/webhooks/opsgenie?token={OPSGENIE_TOKEN}", json=payload)
    assert by_query.status_code == 202
    await draft_of(api, "opsgenie-second-alert")


async def test_opsgenie_rejections(api: Api) -> None:
    payload = fixture_json("opsgenie_webhook_close.json")
    payload["alert"]["alertId"] = "rejected-alert"
    missing = await api.http.post("/webhooks/opsgenie", json=payload)
    wrong = await api.http.post("/webhooks/opsgenie", json=payload, headers={"X-Postmortem-Token": "nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "X-Postmortem-Token" in missing.json()["detail"]
    ack = await api.http.post(
        "/webhooks/opsgenie",
        json=fixture_json("opsgenie_webhook_acknowledge.json"),
        headers={"X-Postmortem-Token": OPSGENIE_TOKEN},
    )
    assert ack.status_code == 202 and ack.json()["status"] == "ignored"
    unsafe = dict(payload, alert=dict(payload["alert"], alertId="../../etc"))
    bad_id = await api.http.post("/webhooks/opsgenie", json=unsafe, headers={"X-Postmortem-Token": OPSGENIE_TOKEN})
    assert bad_id.status_code == 422
    assert await api.store.postmortems.owner_of("opsgenie", "rejected-alert") is None


async def test_deleted_report_ends_its_workflow(api: Api) -> None:
    body = pagerduty_resolved_body("PDEL")
    await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    pm = await draft_of(api, "pagerduty-PDEL")
    assert (await api.http.delete(f"/api/postmortems/{pm.id}", headers=api.auth(Role.EDITOR))).status_code == 403
    response = await api.http.delete(f"/api/postmortems/{pm.id}", headers=api.auth(Role.ADMIN))
    assert response.status_code == 204
    assert (await api.http.get(f"/api/postmortems/{pm.id}", headers=api.auth())).status_code == 404
    description = await api.env.client.get_workflow_handle(pm.workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED  # it cancelled its meeting and finished
    assert await api.store.meetings.get(pm.id) is None
    assert [key for key, _ in await api.store.meetings.deliveries(pm.id)] == []  # no channel configured here

    # The same delivery retried is the same inbox entry: answered with what its relay recorded, no new report.
    retried = await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    assert retried.status_code == 202 and retried.json()["postmortems"][0]["outcome"] == "accepted"

    # The incident resolves again later (a new event): a fresh report, since the old one was deleted on purpose.
    resolved_again = json.loads(body)
    resolved_again["event"]["id"] = "01RESOLVEDAGAIN"
    again_body = json.dumps(resolved_again).encode()
    again = await api.http.post("/webhooks/pagerduty", content=again_body, headers=signed(again_body))
    assert again.status_code == 202 and again.json()["postmortems"][0]["outcome"] == "queued"
    assert (await draft_of(api, "pagerduty-PDEL")).version == 1
