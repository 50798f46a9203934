"""A report's JSON shows its problems and follow-up checks; POST …/problems/{id}/retry refuses what it must.

The retry that goes through to the workflow is proven in test_problem_retry_api.py (a real failing
side effect); here the answers that are the API's own: 404, 409, who may ask, and the JSON's shape.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postmortem.review.problems import ProblemState
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_postmortems_api import seed

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def test_the_report_shows_its_problems_and_follow_ups(api: Api) -> None:
    pm_id = await seed(api, "PPROBVIEW")
    url = f"/api/postmortems/{pm_id}"
    fresh = (await api.http.get(url, headers=api.auth(Role.VIEWER))).json()
    assert fresh["problems"] == [] and fresh["follow_ups"] == []

    for attempt, at in ((1, T0), (2, T0 + timedelta(hours=1))):
        await api.store.problems.record(
            pm_id,
            problem_id="notify-slack",
            workflow_id=f"postmortem-{pm_id}",
            step="notify",
            target="slack:#payments",
            message="channel_not_found",
            attempt=attempt,
            now=at,
        )
    await api.store.follow_ups.record(
        pm_id,
        30,
        {"completed": 1, "open": 2, "overdue": ["Canary deploys"], "stalled": [], "owners_to_remind": ["a@x.io"]},
        T0 + timedelta(days=30),
    )
    await api.store.follow_ups.record(
        pm_id,
        90,
        {"completed": 3, "open": 0, "overdue": [], "stalled": [], "verdict": {"worked": True, "recurrences": 0}},
        T0 + timedelta(days=90),
    )
    body = (await api.http.get(url, headers=api.auth(Role.VIEWER))).json()
    [problem] = body["problems"]
    assert {k: problem[k] for k in ("id", "step", "target", "message", "attempts", "state")} == {
        "id": "notify-slack",
        "step": "notify",
        "target": "slack:#payments",
        "message": "channel_not_found",
        "attempts": 2,
        "state": "open",
    }
    assert datetime.fromisoformat(problem["first_seen"]) == T0
    assert body["follow_ups"] == [
        {
            "day": 30,
            "at": (T0 + timedelta(days=30)).isoformat().replace("+00:00", "Z"),
            "completed": 1,
            "open": 2,
            "overdue": ["Canary deploys"],
            "stalled": [],
            "verdict": None,
        },
        {
            "day": 90,
            "at": (T0 + timedelta(days=90)).isoformat().replace("+00:00", "Z"),
            "completed": 3,
            "open": 0,
            "overdue": [],
            "stalled": [],
            "verdict": {"worked": True, "recurrences": 0},
        },
    ]
    markdown = await api.http.get(url, params={"format": "markdown"}, headers=api.auth(Role.VIEWER))
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "channel_not_found" not in markdown.text and markdown.text.startswith("# ")  # the document, as before


async def test_a_retry_is_refused_for_an_unknown_or_settled_problem_and_a_viewer(api: Api) -> None:
    pm_id = await seed(api, "PPROBRETRY")
    base = f"/api/postmortems/{pm_id}/problems"
    unknown = await api.http.post(f"{base}/nope/retry", headers=api.auth(Role.EDITOR))
    assert unknown.status_code == 404 and unknown.json()["detail"] == f"no problem 'nope' in post-mortem {pm_id!r}"
    await api.store.problems.record(
        pm_id,
        problem_id="invite-email",
        workflow_id=f"postmortem-{pm_id}",
        step="invite",
        target="email",
        message="550 5.1.1 mailbox unavailable",
        attempt=1,
        now=T0,
    )
    viewer = await api.http.post(f"{base}/invite-email/retry", headers=api.auth(Role.VIEWER))
    assert viewer.status_code == 403 and viewer.json()["detail"].startswith("this action needs the editor role")
    await api.store.problems.set_state(pm_id, "invite-email", ProblemState.RESOLVED, T0 + timedelta(hours=1))
    settled = await api.http.post(f"{base}/invite-email/retry", headers=api.auth(Role.EDITOR))
    assert settled.status_code == 409 and "is resolved" in settled.json()["detail"]
    missing = await api.http.post("/api/postmortems/pagerduty-NOPE/problems/invite-email/retry", headers=api.auth())
    assert missing.status_code == 404 and missing.json()["detail"] == "no post-mortem 'pagerduty-NOPE'"
