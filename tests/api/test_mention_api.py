"""An @mention in a comment, over the API: the comment is stored, the API tells the workflow
(`comment_posted`), and the person mentioned gets one email with the report's title and their own
signed link; unknown names and the comment's author get nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from postmortem.config import SmtpSettings
from postmortem.review import signed_links
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import running_api
from tests.api.test_review_api import drafted, fill, person
from tests.fakes.smtp_server import smtp_inbox
from tests.support import eventually

BOB = "bob@example.com"


async def test_a_mention_in_a_comment_emails_the_person_mentioned_once(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    with smtp_inbox() as inbox:
        smtp = SmtpSettings(host=inbox.host, port=inbox.port, starttls=False, sender="pm@example.com")
        async with running_api(dev_env, sqlite_store, tmp_path, smtp=smtp) as api:
            pm_id = await drafted(api, f"PMENTION{datetime.now(UTC):%H%M%S%f}")
            await fill(api, pm_id)
            alice = await person(api, "alice@example.com", Role.REVIEWER)
            await person(api, BOB, Role.VIEWER)
            base = f"/api/postmortems/{pm_id}"
            body = f"@{BOB} is the TTL really 1 day? cc @alice@example.com @nobody@example.com"
            posted = await api.http.post(
                f"{base}/comments", json={"section": "root_cause", "body": body}, headers=alice
            )
            assert posted.status_code == 201, posted.text
            assert posted.json()["mentions"] == [BOB, "alice@example.com", "nobody@example.com"]

            def mentioned() -> list[object]:
                return [m for m in inbox.messages if str(m["Subject"]).startswith("You were mentioned:")]

            async def told() -> list[object] | None:
                return mentioned() or None

            [mail] = await eventually(told, timeout=30)
            title = (await api.store.postmortems.get(pm_id)).title
            assert str(mail["To"]) == BOB and title in str(mail["Subject"]) and mail["Date"]  # type: ignore[index]
            text = mail.get_content()  # type: ignore[attr-defined]
            assert (
                "alice@example.com mentioned you in a comment on Root cause and contributing factors" in text
            )  # its title
            assert "TTL" in text
            [token] = re.findall(r"\?t=(\S+)", text)
            secret = await api.store.secrets.get_or_create(signed_links.STORED_SECRET, datetime.now(UTC))
            assert signed_links.verify(secret, token, pm_id, datetime.now(UTC)) == BOB

            # The same comment's mention is keyed by the comment: one message, even once the
            # workflow has gone round its loop again (the next comment's mail arrives after it).
            again = await api.http.post(
                f"{base}/comments", json={"section": "impact", "body": f"@{BOB} and this?"}, headers=alice
            )
            assert again.status_code == 201

            async def second() -> bool:
                return len(mentioned()) == 2

            await eventually(second, timeout=30)
            assert sorted(str(m["To"]) for m in mentioned()) == [BOB, BOB]  # type: ignore[index]
