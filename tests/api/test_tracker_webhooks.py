"""Trackers push ticket status: GitHub (signed), Linear (signed) and Jira (shared token)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.config import GitHubSettings, JiraSettings, LinearSettings, StoreSettings, TicketsSettings
from postmortem.incident.teams import TeamsConfig
from postmortem.models import ActionItemStatus, Priority
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event
from tests.support import free_port

NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest_asyncio.fixture
async def http(sqlite_store: Store, tmp_path):
    settings = Settings(
        store=StoreSettings(data_dir=tmp_path),
        tickets=TicketsSettings(
            github=GitHubSettings(webhook_secret="gh-secret"),
            linear=LinearSettings(webhook_secret="ln-secret"),
            jira=JiraSettings(webhook_token="jira-token"),
        ),
    )
    app = create_app(
        Services(
            settings=settings,
            store=sqlite_store,
            teams=TeamsConfig(),
            temporal=TemporalGateway(f"127.0.0.1:{free_port()}", "default", "q"),
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def item_with_ticket(store: Store, incident: str, tracker: str, key: str) -> tuple[str, str]:
    pm, _ = await store.postmortems.create_if_absent(new_postmortem(pagerduty_event(incident).incident))
    item = await store.postmortems.add_action_item(
        pm.id,
        description="Fix it",
        owner=None,
        due_date=None,
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        now=NOW,
    )
    await store.postmortems.set_ticket(pm.id, item.id, tracker, key, f"https://tracker/{key}", NOW)
    return pm.id, item.id


async def status_of(store: Store, pm_id: str, item_id: str) -> ActionItemStatus:
    item, _ = await store.postmortems.get_action_item(pm_id, item_id)
    return item.status


def signed(body: bytes, secret: str, prefix: str = "") -> str:
    return prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_github_issue_closed_completes_the_item(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    pm_id, item_id = await item_with_ticket(sqlite_store, "PGHW", "github", "acme/ops#7")
    event: dict[str, Any] = {
        "action": "closed",
        "issue": {"number": 7, "state": "closed", "state_reason": "completed"},
        "repository": {"full_name": "acme/ops"},
    }
    body = json.dumps(event).encode()
    headers = {"X-GitHub-Event": "issues", "X-Hub-Signature-256": signed(body, "gh-secret", "sha256=")}
    answer = await http.post("/webhooks/github", content=body, headers=headers)
    assert answer.status_code == 202 and answer.json()["status"] == "synced"
    assert await status_of(sqlite_store, pm_id, item_id) == ActionItemStatus.COMPLETED
    bad = await http.post("/webhooks/github", content=body, headers={**headers, "X-Hub-Signature-256": "sha256=00"})
    assert bad.status_code == 401
    missing = await http.post("/webhooks/github", content=body, headers={"X-GitHub-Event": "issues"})
    assert missing.status_code == 400
    not_planned = dict(event, issue=dict(event["issue"], state_reason="not_planned"))
    body = json.dumps(not_planned).encode()
    await http.post(
        "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": signed(body, "gh-secret", "sha256=")},
    )
    assert await status_of(sqlite_store, pm_id, item_id) == ActionItemStatus.WONT_DO


async def test_linear_and_jira_status_pushes(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    pm_id, item_id = await item_with_ticket(sqlite_store, "PLNW", "linear", "ENG-12")
    body = json.dumps(
        {"action": "update", "type": "Issue", "data": {"identifier": "ENG-12", "state": {"type": "started"}}}
    ).encode()
    answer = await http.post("/webhooks/linear", content=body, headers={"Linear-Signature": signed(body, "ln-secret")})
    assert answer.status_code == 202 and await status_of(sqlite_store, pm_id, item_id) == ActionItemStatus.IN_PROGRESS
    assert (
        await http.post("/webhooks/linear", content=body, headers={"Linear-Signature": "0" * 64})
    ).status_code == 401

    pm_id, item_id = await item_with_ticket(sqlite_store, "PJRW", "jira", "OPS-24")
    event: dict[str, Any] = {
        "webhookEvent": "jira:issue_updated",
        "issue": {
            "key": "OPS-24",
            "fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}, "resolution": {"name": "Done"}},
        },
    }
    done = await http.post("/webhooks/jira?token=jira-token", json=event)
    assert done.status_code == 202 and await status_of(sqlite_store, pm_id, item_id) == ActionItemStatus.COMPLETED
    assert (await http.post("/webhooks/jira", json=event)).status_code == 401
    unknown = await http.post(
        "/webhooks/jira",
        json={**event, "issue": {**event["issue"], "key": "OPS-999"}},
        headers={"X-Postmortem-Token": "jira-token"},
    )
    assert unknown.status_code == 202 and "no action item" in unknown.json()["reason"]
    malformed = await http.post("/webhooks/jira?token=jira-token", json={"issue": {}})
    assert malformed.status_code == 422


async def test_a_jira_issue_dropped_as_wont_fix_is_wont_do(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    """The resolution as Jira sites often spell it (typographic apostrophe): the webhook once called it done."""
    pm_id, item_id = await item_with_ticket(sqlite_store, "PJRX", "jira", "OPS-25")
    fields = {"status": {"name": "Closed", "statusCategory": {"key": "done"}}, "resolution": {"name": "Won\u2019t Fix"}}
    event = {"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-25", "fields": fields}}
    answer = await http.post("/webhooks/jira?token=jira-token", json=event)
    assert answer.status_code == 202 and answer.json()["state"] == "wont_do"
    assert await status_of(sqlite_store, pm_id, item_id) == ActionItemStatus.WONT_DO
