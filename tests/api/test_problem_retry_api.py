"""A side effect that fails for good is on the report, and POST …/problems/{id}/retry delivers it once fixed.

Over the real app and worker, with a loopback Slack whose channel is gone (`channel_not_found`, as
chat.postMessage answers it): the publication's announcement fails, the report is published all the
same and shows the problem in Slack's words; after the channel is back, one retry announces it once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from postmortem.config import SlackSettings
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import Api, running_api
from tests.api.test_review_api import drafted, fill, person
from tests.fakes.serve import serve_app
from tests.fakes.slack import FakeSlack, slack_app
from tests.support import eventually

CHANNEL = "C0ANNOUNCE"
TEAMS = f"""
[default]
timezone = "Europe/Berlin"
slack_channel = "{CHANNEL}"
"""


@pytest_asyncio.fixture
async def with_slack(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> AsyncIterator[tuple[Api, FakeSlack]]:
    slack = FakeSlack()
    slack.channels[CHANNEL] = []
    async with serve_app(slack_app(slack)) as url:
        settings = SlackSettings(api_url=f"{url}/api", bot_token=slack.token)
        async with running_api(dev_env, sqlite_store, tmp_path, teams=TEAMS, slack=settings) as api:
            yield api, slack


def announcements(slack: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in slack.posted if m.get("channel") == CHANNEL and "published" in m.get("text", "")]


async def test_a_failed_announcement_is_on_the_report_and_one_retry_announces_it(
    with_slack: tuple[Api, FakeSlack],
) -> None:
    api, slack = with_slack
    pm_id = await drafted(api, "PRETRYAPI")
    base = f"/api/postmortems/{pm_id}"
    alice = await person(api, "alice@example.com", Role.REVIEWER)
    await fill(api, pm_id)
    slack.fail_with("channel_not_found", path="/api/chat.postMessage")
    submitted = await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=api.auth())
    assert submitted.status_code == 200, submitted.text
    published = await api.http.post(f"{base}/approve", json={}, headers=alice)
    assert published.status_code == 200 and published.json()["status"] == "PUBLISHED", published.text

    async def publish_problem() -> dict[str, Any] | None:
        report = (await api.http.get(base, headers=api.auth(Role.VIEWER))).json()
        return next((p for p in report["problems"] if p["step"] == "publish" and p["state"] == "open"), None)

    problem = await eventually(publish_problem, timeout=30)
    assert "channel_not_found" in problem["message"] and problem["target"] == CHANNEL
    assert set(problem) >= {"id", "step", "target", "message", "first_seen", "attempts", "state"}
    handle = api.env.client.get_workflow_handle(f"postmortem-{pm_id}")
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert announcements(slack) == []

    slack.heal()
    retry = f"{base}/problems/{problem['id']}/retry"
    assert (await api.http.post(retry, headers=api.auth(Role.VIEWER))).status_code == 403
    accepted = await api.http.post(retry, headers=api.auth(Role.EDITOR))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["id"] == problem["id"] and accepted.json()["state"] == "retrying"

    async def resolved() -> bool:
        report = (await api.http.get(base, headers=api.auth(Role.VIEWER))).json()
        return any(p["id"] == problem["id"] and p["state"] == "resolved" for p in report["problems"])

    await eventually(resolved, timeout=30)
    assert len(announcements(slack)) == 1  # announced, once
    again = await api.http.post(retry, headers=api.auth(Role.EDITOR))
    assert again.status_code == 409 and "resolved" in again.json()["detail"]
    assert len(announcements(slack)) == 1
