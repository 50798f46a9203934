"""End to end through the API of `postmortem dev`: a resolved webhook becomes a published report,
with the Slack announcement received by a loopback server speaking Slack's format."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_dev_service import signed
from tests.factories import pagerduty_resolved_body
from tests.fakes.serve import serve_app
from tests.fakes.slack import FakeSlack, slack_app
from tests.support import eventually, free_port

pytestmark = pytest.mark.e2e
ADMIN = "e2e-publish-admin"
SECRET = "e2e-pagerduty-secret"
SECTIONS = (
    "summary",
    "timeline",
    "root_cause",
    "impact",
    "detection_response",
    "resolution",
    "action_items",
    "lessons_learned",
)


async def test_resolved_webhook_to_published_report_with_slack_announcement(tmp_path: Path) -> None:
    slack = FakeSlack()
    slack.channels["C0POSTMORTEMS"] = []
    (tmp_path / "teams.toml").write_text('[default]\nslack_channel = "C0POSTMORTEMS"\n')
    port = free_port()
    async with serve_app(slack_app(slack)) as slack_url:
        env = {
            **os.environ,
            "POSTMORTEM_DATA_DIR": str(tmp_path),
            "POSTMORTEM_PORT": str(port),
            "POSTMORTEM_TEMPORAL_PORT": str(free_port()),
            "POSTMORTEM_TEMPORAL_UI_PORT": str(free_port()),
            "POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS": SECRET,
            "POSTMORTEM_BOOTSTRAP_ADMIN_TOKEN": ADMIN,
            "POSTMORTEM_TEAMS_FILE": str(tmp_path / "teams.toml"),
            "POSTMORTEM_SLACK_API_URL": f"{slack_url}/api",
            "POSTMORTEM_SLACK_BOT_TOKEN": slack.token,
        }
        log = (tmp_path / "service.log").open("wb")
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "postmortem"), "dev"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=20, headers={"Authorization": f"Bearer {ADMIN}"}
            ) as http:

                async def ready() -> bool:
                    assert process.poll() is None, (tmp_path / "service.log").read_text()
                    try:
                        return (await http.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await eventually(ready, timeout=90, interval=0.2)
                body = pagerduty_resolved_body("PE2EPUB", resolved_at=datetime.now(UTC))
                assert (await http.post("/webhooks/pagerduty", content=body, headers=signed(body))).status_code == 202

                async def drafted() -> dict | None:
                    response = await http.get("/api/postmortems/pagerduty-PE2EPUB")
                    return response.json() if response.status_code == 200 and response.json()["review"] else None

                report = await eventually(drafted, timeout=30)
                edit = await http.patch(
                    "/api/postmortems/pagerduty-PE2EPUB",
                    json={"sections": {k: {"body": f"Written {k}."} for k in SECTIONS}},
                    headers={"If-Match": f'"{report["version"]}"'},
                )
                assert edit.status_code == 200, edit.text
                alice = (await http.post("/api/tokens", json={"name": "alice@example.com", "role": "reviewer"})).json()
                submitted = await http.post(
                    "/api/postmortems/pagerduty-PE2EPUB/submit", json={"reviewers": ["alice@example.com"]}
                )
                assert submitted.status_code == 200 and submitted.json()["status"] == "IN_REVIEW", submitted.text
                approved = await http.post(
                    "/api/postmortems/pagerduty-PE2EPUB/approve",
                    json={"comment": "Clear"},
                    headers={"Authorization": f"Bearer {alice['token']}"},
                )
                assert approved.status_code == 200 and approved.json()["status"] == "PUBLISHED", approved.text

                def announcements() -> list[dict[str, Any]]:  # the channel also hears "Review requested"
                    return [m for m in slack.posted if "Post-mortem published" in m["text"]]

                async def announced() -> bool:
                    return len(announcements()) == 1

                await eventually(announced, timeout=30)
                assert announcements()[0]["channel"] == "C0POSTMORTEMS"
                assert any(r.headers.get("authorization") == f"Bearer {slack.token}" for r in slack.requests)
                html = await http.get("/api/postmortems/pagerduty-PE2EPUB/export", params={"format": "html"})
                assert html.status_code == 200 and "Written root_cause." in html.text
                pdf = await http.get("/api/postmortems/pagerduty-PE2EPUB/export", params={"format": "pdf"})
                assert pdf.content.startswith(b"%PDF")
                public = await http.get(
                    f"/public/postmortems/{approved.json()['public_slug']}", headers={"Authorization": ""}
                )
                assert public.status_code == 200 and "Test Incident" in public.text
        finally:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=60)
            log.close()
