"""The report page's newer forms in Chromium, in English and Chinese: an image uploaded through the
file field (and a file that is no image refused in the API's words), visibility and cause saved,
reviewers changed, an incident linked, an action item deleted. Each form card is photographed at
1280×800 and 390×844 into /tmp/shots/web/ (looked at by people, never committed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from postmortem.store.tokens import Role
from tests.api.test_review_api import fill
from tests.browser.conftest import REVIEWER, Site
from tests.browser.test_pages_in_chromium import resolved
from tests.image_samples import png

SHOTS = Path("/tmp/shots/web")
SIZES = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
CARDS = {"images": "#images", "settings": "#settings", "reviewers": "#reviewers-h", "incidents": "#incidents"}


async def shoot(page: Any, name: str, selector: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        await page.set_viewport_size(viewport)
        card = page.locator(selector).first
        if selector.endswith("-h"):  # a heading: its card
            card = card.locator("xpath=..")
        await card.scroll_into_view_if_needed()
        await card.screenshot(path=str(SHOTS / f"{name}-{size}.png"))
    await page.set_viewport_size(SIZES["laptop"])


async def prepared(site: Site, incident: str, language: str) -> str:
    api = site.api
    pm_id = await resolved(site, incident, timedelta(hours=1))
    current = await api.store.postmortems.get(pm_id)
    changed = await api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"language": language},
        headers={**api.auth(Role.EDITOR), "If-Match": f'"{current.version}"'},
    )
    assert changed.status_code == 200, changed.text
    await fill(api, pm_id)
    submitted = await api.http.post(
        f"/api/postmortems/{pm_id}/submit", json={"reviewers": [REVIEWER]}, headers=api.auth(Role.EDITOR)
    )
    assert submitted.status_code == 200, submitted.text
    added = await api.http.post(
        f"/api/postmortems/{pm_id}/action-items",
        json={"description": "Alert on disk" if language == "en" else "磁盘告警"},
        headers=api.auth(Role.EDITOR),
    )
    assert added.status_code == 201
    return pm_id


async def signed_in(site: Site, browser: Any) -> Any:
    page = await (await browser.new_context(viewport=SIZES["laptop"])).new_page()
    await page.goto(f"{site.url}/signin")
    await page.fill("#token", site.api.tokens[Role.EDITOR])
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{site.url}/postmortems")
    return page


async def test_the_report_forms_in_chromium(site: Site, browser: Any, tmp_path: Path) -> None:
    await site.api.store.tokens.create(REVIEWER, Role.REVIEWER, datetime.now(UTC))
    await site.api.store.tokens.create("rita2@example.com", Role.REVIEWER, datetime.now(UTC))
    picture = tmp_path / "graph.png"
    picture.write_bytes(png(width=40, height=20))
    text_file = tmp_path / "notes.png"
    text_file.write_bytes(b"not an image at all")
    page = await signed_in(site, browser)
    for language, incident in (("en", "PBFORMEN"), ("zh", "PBFORMZH")):
        pm_id = await prepared(site, incident, language)
        url = f"{site.url}/postmortems/{pm_id}"
        await page.goto(url)

        await page.set_input_files("#image-file", str(text_file))
        await page.click("#images button[type=submit]")
        refusal = page.locator("#refusal")
        assert "JPEG, PNG, WebP or GIF" in await refusal.inner_text(), "the API's refusal in its words"
        await shoot(page, f"refusal-image-{language}", "#refusal")
        await page.set_input_files("#image-file", str(picture))
        await page.click("#images button[type=submit]")
        await page.wait_for_selector("#notice")
        assert await page.locator("#images figure img").count() == 1
        image = page.locator("#images figure img")
        await image.scroll_into_view_if_needed()  # loading="lazy"
        loaded = "img => img.complete && img.naturalWidth ? img.naturalWidth : new Promise(r => img.onload = () => r(img.naturalWidth))"
        assert await image.evaluate(loaded) == 40, "the image is served back to the page"
        await shoot(page, f"images-{language}", "#images")

        await page.select_option("#visibility", "team")
        await page.select_option("#cause", "capacity")
        await page.click("#settings button[type=submit]")
        await page.wait_for_selector("#notice")
        stored = await site.api.store.postmortems.get(pm_id)
        assert stored.visibility.value == "team" and stored.cause_category is not None
        await shoot(page, f"settings-{language}", "#settings")

        await page.fill("#change-reviewers", f"{REVIEWER}, rita2@example.com")
        await page.click("form[action$='/reviewers'] button")
        await page.wait_for_selector("#notice")
        review = await site.api.store.review.get(pm_id)
        assert [r.reviewer for r in review.reviewers] == [REVIEWER, "rita2@example.com"]
        await shoot(page, f"reviewers-{language}", "#reviewers-h")

        await page.fill("#link-incident", f"{incident}B")
        await page.click("#incidents button[type=submit]")
        await page.wait_for_selector("#notice")
        assert await site.api.store.postmortems.owner_of("pagerduty", f"{incident}B") == pm_id
        await shoot(page, f"incidents-{language}", "#incidents")

        await shoot(page, f"items-{language}", "#action-items")
        await page.click(".item-delete button")
        await page.wait_for_selector("#notice")
        assert (await site.api.store.postmortems.get(pm_id)).action_items == []
