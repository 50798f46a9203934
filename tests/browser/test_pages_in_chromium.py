"""The pages in Chromium: an invite's (and a reminder's) signed link opens the report without a token, the named
reviewer approves and sees the status change, a viewer sees no buttons, a stale edit offers to
merge, a refused transition shows the workflow's words, signed links misused are refused; each page
type is photographed at 1366×768 and 390×844 into /tmp/shots-web/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from postmortem.review import signed_links
from postmortem.store.tokens import Role
from postmortem.web.session import LINK_SECRET_NAME
from tests.api.test_webhooks import draft_of, signed
from tests.browser.conftest import OWNER, REVIEWER, SHOTS, Site
from tests.factories import pagerduty_resolved_body
from tests.support import eventually

SIZES = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
FILLED = {
    key: {"body": f"Filled **{key}**." + (" <script>alert('x')</script>" if key == "summary" else "")}
    for key in (
        "summary",
        "timeline",
        "root_cause",
        "impact",
        "detection_response",
        "resolution",
        "action_items",
        "lessons_learned",
    )
}


async def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        await page.set_viewport_size(viewport)
        await page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=False)
    await page.set_viewport_size(SIZES["laptop"])


async def resolved(site: Site, incident: str, ago: timedelta) -> str:
    body = pagerduty_resolved_body(incident, resolved_at=datetime.now(UTC) - ago)
    answer = await site.api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    assert answer.status_code == 202, answer.text
    return (await draft_of(site.api, f"pagerduty-{incident}")).id


async def fill(site: Site, pm_id: str) -> None:
    current = await site.api.store.postmortems.get(pm_id)
    answer = await site.api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"sections": FILLED},
        headers={**site.api.auth(Role.EDITOR), "If-Match": f'"{current.version}"'},
    )
    assert answer.status_code == 200, answer.text


def mail_text(message: Any) -> str:
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_type() == "text/plain")


async def link_secret(site: Site) -> str:
    return await site.api.store.secrets.get_or_create(LINK_SECRET_NAME, datetime.now(UTC))


async def test_an_invite_link_opens_the_report_and_the_reviewer_approves(site: Site, browser: Any) -> None:
    now = datetime.now(UTC)
    await site.api.store.tokens.create(OWNER, Role.EDITOR, now)
    await site.api.store.tokens.create(REVIEWER, Role.REVIEWER, now)
    pm_id = await resolved(site, f"PBRW{now:%H%M%S%f}", timedelta(days=3))  # the submit reminder is due at once

    async def reminder() -> Any:
        return next((m for m in site.inbox.messages if str(m["Subject"]).startswith("Reminder:")), None)

    mail = await eventually(reminder, timeout=30)
    assert OWNER in str(mail["To"])
    found = re.search(rf"{re.escape(site.url)}/postmortems/{pm_id}\?t=[\w.\-]+", mail_text(mail))
    assert found, mail_text(mail)

    async def invite() -> Any:  # the owner's own copy of the meeting invite, with the link signed for them
        return next((m for m, rcpt in site.inbox.invites() if rcpt == [OWNER]), None)

    invited = await eventually(invite, timeout=30)
    link = re.search(rf"{re.escape(site.url)}/postmortems/{pm_id}\?t=([\w.\-]+)", mail_text(invited))
    assert link, mail_text(invited)
    assert signed_links.verify(await link_secret(site), link.group(1), pm_id, now) == OWNER

    owner = await (await browser.new_context()).new_page()  # no cookie, no token: the link from the invite
    await owner.goto(link.group(0))
    assert await owner.locator("#title").is_visible()
    assert OWNER in await owner.locator(".who").inner_text()
    await shoot(owner, "report-draft")

    # Submitting with empty required sections: the workflow's own words, on the page.
    await owner.fill("#reviewers", REVIEWER)
    await owner.click("button[data-action=submit]")
    refusal = await owner.locator("#refusal").inner_text()
    assert "fill the required sections before submitting" in refusal, refusal
    await shoot(owner, "report-refused")

    await fill(site, pm_id)
    await owner.goto(found.group(0))  # the page at the new version
    await owner.fill("#reviewers", REVIEWER)
    await owner.click("button[data-action=submit]")
    assert await owner.locator("#status").inner_text() == "IN_REVIEW"
    assert await owner.locator("button[data-action=approve]").count() == 0  # not a reviewer

    reviewer_link = signed_links.signed_url(site.url, await link_secret(site), pm_id, REVIEWER, now + timedelta(days=1))
    reviewer = await (await browser.new_context()).new_page()
    await reviewer.goto(reviewer_link)
    await shoot(reviewer, "report-in-review")
    await reviewer.fill("#comment-approve", "Looks right.")
    await reviewer.click("button[data-action=approve]")
    assert await reviewer.locator("#status").inner_text() == "PUBLISHED"  # the last approval publishes
    assert "Looks right." in await reviewer.locator(".reviewers").inner_text()

    async def public_slug() -> str | None:
        return (await site.api.store.review.get(pm_id)).public_slug

    slug = await eventually(public_slug, timeout=30)

    async def summary_ready() -> bool:
        return await site.api.store.review.public_by_slug(slug) is not None

    await eventually(summary_ready, timeout=30)
    public = await (await browser.new_context()).new_page()
    answer = await public.goto(f"{site.url}/public/postmortems/{slug}")
    assert answer is not None and answer.status == 200
    assert "text/html" in answer.headers["content-type"]
    assert "<script>alert" not in await public.content()  # shown as text, never markup
    assert "Filled summary." in await public.locator("article").inner_text()
    await shoot(public, "public-summary")
    markdown = await site.api.http.get(f"/public/postmortems/{slug}.md")
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    assert "Filled **summary**." in markdown.text


async def test_a_viewer_sees_no_buttons_and_a_stale_edit_offers_to_merge(site: Site, browser: Any) -> None:
    pm_id = await resolved(site, f"PBRV{datetime.now(UTC):%H%M%S%f}", timedelta(hours=1))
    current = await site.api.store.postmortems.get(pm_id)
    chinese = await site.api.http.patch(  # its page is in its language
        f"/api/postmortems/{pm_id}",
        json={"language": "zh"},
        headers={**site.api.auth(Role.EDITOR), "If-Match": f'"{current.version}"'},
    )
    assert chinese.status_code == 200, chinese.text
    viewer = await (await browser.new_context(locale="zh-CN")).new_page()
    await viewer.goto(f"{site.url}/")
    await shoot(viewer, "sign-in")
    await viewer.fill("#token", site.api.tokens[Role.VIEWER])
    await viewer.click("button[type=submit].primary")
    assert await viewer.locator(f"a[href='/postmortems/{pm_id}']").count() == 1
    await shoot(viewer, "list")
    await viewer.click(f"a[href='/postmortems/{pm_id}']")
    assert await viewer.locator("#title").is_visible()
    assert await viewer.locator("[data-action]").count() == 0
    assert await viewer.locator("form.edit-section").count() == 0
    assert await viewer.locator("html").get_attribute("lang") == "zh-CN"
    assert "关键指标" in await viewer.locator("#metrics-h").inner_text()
    await shoot(viewer, "report-zh-viewer")

    editor = await (await browser.new_context()).new_page()
    await editor.goto(f"{site.url}/signin")
    await editor.fill("#token", site.api.tokens[Role.EDITOR])
    await editor.click("button[type=submit].primary")
    await editor.goto(f"{site.url}/postmortems/{pm_id}")
    await editor.click("#section-summary details summary")
    await editor.fill("#body-summary", "My summary.")
    # Someone else saves the same report first.
    current = await site.api.store.postmortems.get(pm_id)
    theirs = await site.api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"sections": {"summary": {"body": "Their summary."}}},
        headers={**site.api.auth(Role.ADMIN), "If-Match": f'"{current.version}"'},
    )
    assert theirs.status_code == 200
    await editor.click("#section-summary form.edit-section button[type=submit]")
    # "Someone else saved first", in the report's language.
    assert await editor.locator("h1").inner_text() == "他人已先保存"
    assert "Their summary." in await editor.locator(".theirs").inner_text()
    assert await editor.locator("#merge-body").input_value() == "My summary."
    await shoot(editor, "conflict")
    await editor.fill("#merge-body", "Their summary. My summary.")
    await editor.click(".merge button[type=submit]")
    assert "Their summary. My summary." in await editor.locator("#section-summary").inner_text()


async def test_signed_links_misused_are_refused(site: Site, browser: Any) -> None:
    first = await resolved(site, f"PBRL{datetime.now(UTC):%H%M%S%f}", timedelta(hours=1))
    second = await resolved(site, f"PBRM{datetime.now(UTC):%H%M%S%f}", timedelta(hours=1))
    secret, now = await link_secret(site), datetime.now(UTC)
    token = signed_links.sign(secret, first, REVIEWER, now + timedelta(days=1))
    page = await (await browser.new_context()).new_page()

    tampered = await page.goto(f"{site.url}/postmortems/{first}?t={token[:-3]}xyz")
    assert tampered is not None and tampered.status == 403
    assert "changed" in await page.locator(".message").inner_text()
    await shoot(page, "error")
    other = await page.goto(f"{site.url}/postmortems/{second}?t={token}")
    assert other is not None and other.status == 403
    assert "another post-mortem" in await page.locator(".message").inner_text()
    expired = signed_links.sign(secret, first, REVIEWER, now - timedelta(minutes=1))
    late = await page.goto(f"{site.url}/postmortems/{first}?t={expired}")
    assert late is not None and late.status == 401
    assert "expired" in await page.locator(".notice").inner_text()
    assert await page.locator("#token").is_visible()  # it asks to sign in


async def test_the_docs_run_from_our_own_files(site: Site, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    blocked: list[str] = []
    page.on(
        "console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None
    )
    requests: list[
        str
    ] = []  # what was fetched: ReDoc's branding logo (cdn.redoc.ly) is asked for, and the CSP blocks it
    page.on("response", lambda response: requests.append(response.url))
    await page.goto(f"{site.url}/docs")
    await page.wait_for_selector(".swagger-ui .info", timeout=15_000)
    await shoot(page, "docs")
    assert all(url.startswith(site.url) or url.startswith("data:") for url in requests), requests
    await page.goto(f"{site.url}/redoc")
    await page.wait_for_selector("[role=navigation], .api-content", timeout=15_000)
    outside = [url for url in requests if not url.startswith((site.url, "data:", "blob:"))]
    assert not outside, outside
