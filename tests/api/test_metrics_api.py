"""GET /api/metrics and GET /api/action-items over real reports in the store."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from postmortem.models import ActionItemStatus, Priority, Status
from postmortem.review.lifecycle import Review, Transition
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime.now(UTC)


async def report(api: Api, incident: str, team: str, *, published: bool, cause: str | None = None) -> str:
    pm, _ = await api.store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(incident, created_at="2021-06-04T12:00:00Z").incident, team=team)
    )
    if cause:
        await api.store.postmortems.update(pm.id, pm.version, PostmortemChanges(cause_category=cause), NOW)
    if published:
        assert pm.metrics.closed_at is not None
        review = Review(
            status=Status.PUBLISHED,
            published_count=1,
            history=[
                Transition(
                    action="approve",
                    by="alice",
                    at=pm.metrics.closed_at + timedelta(hours=30),
                    from_status=Status.IN_REVIEW,
                    to_status=Status.PUBLISHED,
                )
            ],
        )
        await api.store.review.save(pm.id, review, NOW)
    return pm.id


async def test_program_metrics_and_trends(api: Api) -> None:
    a = await report(api, "PMETA", "payments", published=True, cause="change_management")
    await report(api, "PMETB", "payments", published=False, cause="change_management")
    c = await report(api, "PMETC", "search", published=True, cause="capacity")
    on_time = await api.store.postmortems.add_action_item(
        a,
        description="Canary deploys",
        owner="alice",
        due_date=NOW.date() + timedelta(days=5),
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        now=NOW,
    )
    await api.store.postmortems.sync_item_status(a, on_time.id, ActionItemStatus.COMPLETED, NOW)
    await api.store.postmortems.add_action_item(
        c,
        description="More capacity",
        owner="bob",
        due_date=date(2020, 1, 1),
        priority=Priority.LOW,
        status=ActionItemStatus.OPEN,
        now=NOW,
    )
    await api.store.follow_ups.record(a, 90, {"verdict": {"worked": False}}, NOW)
    await api.store.follow_ups.record(c, 90, {"verdict": {"worked": True}}, NOW)

    metrics = (await api.http.get("/api/metrics", headers=api.auth(Role.VIEWER))).json()
    assert metrics["postmortems_created"] == 3 and metrics["completion_rate"] == 0.667
    assert metrics["mean_hours_resolution_to_publish"] == 30.0
    assert metrics["action_items_total"] == 2 and metrics["action_items_overdue"] == 1
    assert metrics["action_items_completed_on_time_percent"] == 100.0
    assert metrics["recurrence_rate"] == 0.5
    assert metrics["cause_categories"] == {"change_management": 2, "capacity": 1}
    assert metrics["most_affected_services"] == {"pig208": 3}
    assert metrics["team_completion_rates"] == {"payments": 0.5, "search": 1.0}
    assert metrics["time_to_resolve_seconds"]["count"] == 3
    payments = (await api.http.get("/api/metrics", params={"team": "payments"}, headers=api.auth())).json()
    assert payments["postmortems_created"] == 2
    future = (await api.http.get("/api/metrics", params={"from": "2999-01-01T00:00:00Z"}, headers=api.auth())).json()
    assert future["postmortems_created"] == 0 and future["completion_rate"] is None
    assert (await api.http.get("/api/metrics", params={"from": "tomorrow"}, headers=api.auth())).status_code == 422

    overdue = (await api.http.get("/api/action-items", params={"overdue": "true"}, headers=api.auth())).json()
    assert [i["description"] for i in overdue] == ["More capacity"] and overdue[0]["overdue"] is True
    by_owner = (
        await api.http.get("/api/action-items", params={"owner": "alice", "status": "COMPLETED"}, headers=api.auth())
    ).json()
    assert [i["postmortem_id"] for i in by_owner] == [a] and by_owner[0]["team"] == "payments"
    exported = await api.http.get("/api/action-items", params={"format": "csv"}, headers=api.auth())
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["description"] for r in rows} == {"Canary deploys", "More capacity"}
    assert {r["overdue"] for r in rows} == {"True", "False"}
    # The tracking meeting reads which report an item is from, and opens it from the sheet.
    titles = {pm.id: pm.title for pm in [await api.store.postmortems.get(pm_id) for pm_id in (a, c)]}
    for row in rows:
        assert row["postmortem_title"] == titles[row["postmortem_id"]] and row["postmortem_title"]
        assert row["postmortem_url"].endswith(f"/api/postmortems/{row['postmortem_id']}?format=markdown")
        assert row["postmortem_url"].startswith(("http://", "https://"))
    assert list(rows[0])[:4] == ["postmortem_id", "postmortem_title", "postmortem_url", "team"]


async def test_action_items_page_by_page(api: Api) -> None:
    pm_id = await report(api, "PMPAGE", "payments", published=False)
    for n in range(5):
        await api.store.postmortems.add_action_item(
            pm_id,
            description=f"item {n}",
            owner="alice",
            due_date=date(2030, 1, 1 + n),
            priority=Priority.LOW,
            status=ActionItemStatus.OPEN,
            now=NOW,
        )
    every = (await api.http.get("/api/action-items", headers=api.auth())).json()
    page = (await api.http.get("/api/action-items", params={"limit": 2, "offset": 2}, headers=api.auth())).json()
    assert [row["id"] for row in page] == [row["id"] for row in every[2:4]]
    for bad in ({"limit": 0}, {"limit": 5000}, {"offset": -1}, {"limit": "many"}):
        answer = await api.http.get("/api/action-items", params=bad, headers=api.auth())
        assert answer.status_code == 422 and answer.json()["detail"], bad
