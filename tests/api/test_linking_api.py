"""Linking incidents: another incident joins a report, its webhooks update that report, metrics follow."""

from __future__ import annotations

from datetime import UTC, datetime

from postmortem.models import Severity
from postmortem.store.postmortems import PostmortemFilter
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_webhooks import draft_of, signed
from tests.factories import pagerduty_resolved_body
from tests.support import eventually

P1 = {"id": "PRIO1", "type": "priority_reference", "summary": "P1"}


async def test_a_linked_incident_joins_the_report_and_its_webhook_updates_it(api: Api) -> None:
    body = pagerduty_resolved_body("PLINKA")
    await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    pm = await draft_of(api, "pagerduty-PLINKA")
    url = f"/api/postmortems/{pm.id}/incidents"

    assert (
        await api.http.post(url, json={"source": "pagerduty", "incident_id": "PLINKB"}, headers=api.auth(Role.VIEWER))
    ).status_code == 403
    linked = await api.http.post(
        url, json={"source": "pagerduty", "incident_id": "PLINKB"}, headers=api.auth(Role.EDITOR)
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["metrics"]["incident_count"] == 2
    again = await api.http.post(
        url, json={"source": "pagerduty", "incident_id": "PLINKB"}, headers=api.auth(Role.EDITOR)
    )
    assert again.status_code == 409 and "here already" in again.json()["detail"]
    bad = await api.http.post(url, json={"source": "jira", "incident_id": "X"}, headers=api.auth(Role.EDITOR))
    assert bad.status_code == 422

    # The linked incident resolves: its webhook lands on this report, not on a new one.
    second = pagerduty_resolved_body("PLINKB", created_at="2021-06-04T12:00:00Z", priority=P1)
    answer = await api.http.post("/webhooks/pagerduty", content=second, headers=signed(second))
    assert answer.status_code == 202 and answer.json()["postmortems"][0]["outcome"] == "linked"
    assert answer.json()["postmortems"][0]["postmortem_id"] == pm.id

    async def recomputed():
        current = await api.store.postmortems.get(pm.id)
        return current if current.metrics.highest_severity == Severity.SEV1 else None

    current = await eventually(recomputed)
    assert current.metrics.started_at == datetime(2021, 6, 4, 12, 0, tzinfo=UTC)
    assert current.metrics.incident_count == 2 and current.severity == Severity.SEV1
    assert sorted(i.id for i in current.incidents) == ["PLINKA", "PLINKB"]
    # The signal carried no raw payload (it stays in the inbox); the refresh read it back from there.
    [resolved_b] = [i for i in current.incidents if i.id == "PLINKB"]
    assert resolved_b.raw["event"]["data"]["id"] == "PLINKB"
    assert await api.store.postmortems.owner_of("pagerduty", "PLINKB") == pm.id
    listed, _ = await api.store.postmortems.list(PostmortemFilter(incident_id="PLINKB"))
    assert [p.id for p in listed] == [pm.id]

    other = pagerduty_resolved_body("PLINKC")
    await api.http.post("/webhooks/pagerduty", content=other, headers=signed(other))
    owned = await draft_of(api, "pagerduty-PLINKC")
    taken = await api.http.post(
        url, json={"source": "pagerduty", "incident_id": "PLINKC"}, headers=api.auth(Role.EDITOR)
    )
    assert taken.status_code == 409 and owned.id in taken.json()["detail"]
