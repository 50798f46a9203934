"""End to end: `postmortem dev` as a user runs it — dev server, worker and API in one process tree.

Posts real signed webhooks over HTTP, polls the API for the drafts, and checks that a duplicate,
a bad signature, a clean stop and a hard kill lose nothing and duplicate nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dev_service import DevService, running, wait_ready
from tests.factories import pagerduty_resolved_body
from tests.fixtures import fixture_json
from tests.support import eventually

pytestmark = pytest.mark.e2e

SECRET = "e2e-pagerduty-secret"
OPSGENIE_TOKEN = "e2e-opsgenie-token"
ADMIN = "e2e-admin-token"
TEAMS = """
[default]
language = "en"
timezone = "America/New_York"

[Engineering]
language = "zh"
timezone = "Asia/Shanghai"
"""


def dev_service(data_dir: Path) -> DevService:
    teams = data_dir / "teams.toml"
    teams.write_text(TEAMS)
    settings = {
        "POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS": f"old-secret,{SECRET}",
        "POSTMORTEM_OPSGENIE_WEBHOOK_TOKEN": OPSGENIE_TOKEN,
        "POSTMORTEM_TEAMS_FILE": str(teams),
    }
    return DevService(data_dir, settings, admin_token=ADMIN)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DevService]:
    with running(dev_service(tmp_path)) as started:
        yield started


def signed(body: bytes) -> dict[str, str]:  # noqa: D103 (shared with the publish flow)
    return {"X-PagerDuty-Signature": "v1=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


async def draft(http: httpx.AsyncClient, pm_id: str) -> dict:
    async def check() -> dict | None:
        response = await http.get(f"/api/postmortems/{pm_id}")
        return response.json() if response.status_code == 200 and response.json()["status"] == "DRAFT" else None

    return await eventually(check, timeout=30)


async def test_webhooks_become_drafts_and_survive_restarts(service: DevService) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=service.base, headers=headers, timeout=10) as http:
        await wait_ready(http, service)

        async def banner() -> bool:
            return "Temporal UI" in service.output() and str(service.data_dir) in service.output()

        await eventually(banner, timeout=10)

        body = pagerduty_resolved_body(
            "PE2E1", teams=[{"id": "PT1", "summary": "Engineering", "type": "team_reference"}]
        )
        accepted = await http.post("/webhooks/pagerduty", content=body, headers=signed(body))
        assert accepted.status_code == 202, accepted.text
        opsgenie = await http.post(
            "/webhooks/opsgenie",
            json=fixture_json("opsgenie_webhook_close.json"),
            headers={"X-Postmortem-Token": OPSGENIE_TOKEN},
        )
        assert opsgenie.status_code == 202, opsgenie.text

        pd = await draft(http, "pagerduty-PE2E1")
        assert (pd["team"], pd["language"], pd["timezone"]) == ("Engineering", "zh", "Asia/Shanghai")
        assert pd["metrics"]["highest_severity"] == "SEV2" and pd["metrics"]["services"] == ["pig208"]
        og = await draft(http, "opsgenie-052652ac-5d1c-464a-812a-7dd18bbfba8c")
        assert og["timezone"] == "America/New_York" and og["title"] == "2015-01-05 test alert"
        markdown = await http.get("/api/postmortems/pagerduty-PE2E1", headers={"Accept": "text/markdown"})
        assert markdown.text.startswith("# 2021-06-04 Test Incident") and "## 摘要" in markdown.text

        again = await http.post("/webhooks/pagerduty", content=body, headers=signed(body))
        assert again.status_code == 202
        bad = pagerduty_resolved_body("PE2EBAD")
        rejected = await http.post(
            "/webhooks/pagerduty", content=bad, headers={"X-PagerDuty-Signature": "v1=" + "0" * 64}
        )
        assert rejected.status_code == 401
        listed = (await http.get("/api/postmortems")).json()["items"]
        assert sorted(item["id"] for item in listed) == [
            "opsgenie-052652ac-5d1c-464a-812a-7dd18bbfba8c",
            "pagerduty-PE2E1",
        ]

        edited = await http.patch(
            "/api/postmortems/pagerduty-PE2E1", json={"title": "Kept across restarts"}, headers={"If-Match": '"1"'}
        )
        assert edited.status_code == 200

    assert service.stop(signal.SIGINT) == 0  # Ctrl-C stops every part cleanly
    assert "Stopped." in service.output()

    service.start()
    async with httpx.AsyncClient(base_url=service.base, headers=headers, timeout=10) as http:
        await wait_ready(http, service)
        kept = (await http.get("/api/postmortems/pagerduty-PE2E1")).json()
        assert kept["title"] == "Kept across restarts" and kept["version"] == 2

        # Accepted, then the whole process tree dies at once: the report must still appear.
        crash = pagerduty_resolved_body("PE2ECRASH")
        assert (await http.post("/webhooks/pagerduty", content=crash, headers=signed(crash))).status_code == 202
    service.stop(signal.SIGKILL)

    service.start()
    async with httpx.AsyncClient(base_url=service.base, headers=headers, timeout=10) as http:
        await wait_ready(http, service)
        recovered = await draft(http, "pagerduty-PE2ECRASH")
        assert recovered["incidents"][0]["id"] == "PE2ECRASH"
        duplicate = await http.post("/webhooks/pagerduty", content=crash, headers=signed(crash))
        assert duplicate.status_code == 202
        listed = (await http.get("/api/postmortems", params={"incident_id": "PE2ECRASH"})).json()["items"]
        assert len(listed) == 1
