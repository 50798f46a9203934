"""The live editor in Chromium (#14): pages on one report typing at once converge to the text the API
returns; a page offline keeps typing and merges on its return; a PATCH shows up without a reload; a
viewer follows but cannot type; publishing turns an editor's page read-only. Screenshots of two
people's cursors go to /tmp/shots/coedit/."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from postmortem.models import Status
from postmortem.store.tokens import Role
from tests.browser.conftest import Site
from tests.factories import new_postmortem, pagerduty_event
from tests.image_samples import png
from tests.support import eventually

SHOTS = Path("/tmp/shots/coedit")
SECTION = "section:summary"
# The slower tier (CI runs it): real pages typing for a while. Without the editor's bundle, a failure in CI.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("editor_bundle")]


async def report(site: Site, incident: str) -> str:
    pm, _ = await site.api.store.postmortems.create_if_absent(new_postmortem(pagerduty_event(incident).incident))
    return pm.id


async def person(site: Site, browser: Any, name: str, role: Role, pm_id: str) -> Any:
    _, secret = await site.api.store.tokens.create(name, role, datetime.now(UTC))
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    await context.add_cookies([{"name": "pm_session", "value": secret, "url": site.url}])
    page = await context.new_page()
    await page.goto(f"{site.url}/postmortems/{pm_id}")
    await until(page, "document.getElementById('coedit')?.dataset.synced === 'true'")
    return page


async def until(page: Any, expression: str, timeout: float = 15) -> None:
    """Poll `expression` in the page (wait_for_function evaluates strings, which the page's CSP forbids)."""

    async def holds() -> bool:
        return bool(await page.evaluate(expression))

    await eventually(holds, timeout=timeout)


async def text_of(page: Any, name: str = SECTION) -> str:
    return str(await page.evaluate(f"window.coedit.doc.getText({name!r}).toString()"))


async def stored(site: Site, pm_id: str, key: str = "summary") -> str:
    got = await site.api.http.get(f"/api/postmortems/{pm_id}", headers=site.api.auth())
    return next(section["body"] for section in got.json()["sections"] if section["key"] == key)


async def type_into(page: Any, words: list[str], at_start: bool = False) -> None:
    editor = page.locator(f"[data-ytext='{SECTION}'] .cm-content")
    await editor.click()
    await page.keyboard.press("Control+Home" if at_start else "Control+End")
    for word in words:
        await page.keyboard.type(word, delay=5)


def _kept(word: str, text: str) -> bool:
    """Every character of `word`, in its order: two people typing at the same spot interleave
    (the CRDT keeps each one's order, not their words whole)."""
    rest = iter(text)
    return all(char in rest for char in word)


async def converged(site: Site, pm_id: str, pages: list[Any], words: list[str]) -> str:
    async def same() -> str | None:
        texts = [await text_of(page) for page in pages]
        saved = await stored(site, pm_id)
        assert len(set(texts)) == 1 and all(_kept(word, texts[0]) for word in words) and saved == texts[0], (
            texts,
            saved,
        )
        return texts[0]

    return await eventually(same, timeout=20)


async def test_three_pages_type_at_once_and_agree_with_the_api(site: Site, browser: Any) -> None:
    pm_id = await report(site, "PCOBROWSE1")
    names = ("alice@example.com", "bob@example.com", "carol@example.com")
    pages = [await person(site, browser, name, Role.EDITOR, pm_id) for name in names]
    words = {page: [f" {name[:3]}{i}" for i in range(6)] for page, name in zip(pages, names, strict=True)}
    await asyncio.gather(*(type_into(page, words[page], at_start=index == 1) for index, page in enumerate(pages)))
    everything = [word for page in pages for word in words[page]]
    await converged(site, pm_id, pages, everything)
    # Two people's cursors, at laptop and phone size.
    SHOTS.mkdir(parents=True, exist_ok=True)
    await pages[1].locator(f"[data-ytext='{SECTION}'] .cm-content").click()
    await pages[0].locator("#coedit").scroll_into_view_if_needed()
    await pages[0].wait_for_selector(".cm-ySelectionCaret", timeout=10000)
    await pages[0].screenshot(path=str(SHOTS / "editor-two-cursors-laptop.png"))
    await pages[0].set_viewport_size({"width": 390, "height": 844})
    await pages[0].locator(f"[data-ytext='{SECTION}']").scroll_into_view_if_needed()
    await pages[0].screenshot(path=str(SHOTS / "editor-two-cursors-phone.png"))


async def test_a_page_offline_keeps_typing_and_merges_on_return(site: Site, browser: Any) -> None:
    pm_id = await report(site, "PCOBROWSE2")
    online = await person(site, browser, "dave@example.com", Role.EDITOR, pm_id)
    away = await person(site, browser, "erin@example.com", Role.EDITOR, pm_id)
    await away.context.set_offline(True)
    await away.evaluate("window.coedit.provider.disconnect()")  # the socket drops as the network does
    await asyncio.gather(type_into(online, [" online1", " online2"]), type_into(away, [" away1", " away2"], True))
    assert "away1" not in await text_of(online)
    await away.context.set_offline(False)
    await away.evaluate("window.coedit.provider.connect()")
    await converged(site, pm_id, [online, away], ["online1", "online2", "away1", "away2"])


async def test_a_patch_shows_up_and_a_viewer_follows_without_typing(site: Site, browser: Any) -> None:
    pm_id = await report(site, "PCOBROWSE3")
    editor = await person(site, browser, "frank@example.com", Role.EDITOR, pm_id)
    viewer = await person(site, browser, "grace@example.com", Role.VIEWER, pm_id)
    assert await viewer.locator("#coedit").get_attribute("data-writable") == "false"
    assert await viewer.locator("#coedit-banner").is_visible()
    await type_into(viewer, [" viewer-typed"])
    current = await site.api.http.get(f"/api/postmortems/{pm_id}", headers=site.api.auth())
    body = await stored(site, pm_id)
    patched = await site.api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"sections": {"summary": {"body": body + " via-api"}}},
        headers={**site.api.auth(Role.EDITOR), "If-Match": current.headers["ETag"]},
    )
    assert patched.status_code == 200, patched.text
    await type_into(editor, [" live-typed"])
    final = await converged(site, pm_id, [editor, viewer], ["via-api", "live-typed"])
    assert "viewer-typed" not in final

    await site.api.store.postmortems.set_status(pm_id, Status.PUBLISHED, datetime.now(UTC))
    await until(editor, "document.getElementById('coedit').dataset.writable === 'false'")
    assert "PUBLISHED" in await editor.locator("#coedit-banner").inner_text()
    await type_into(editor, [" after-publish"])
    assert "after-publish" not in await stored(site, pm_id)
    assert await editor.locator(f"[data-ytext='{SECTION}'] .cm-content").get_attribute("contenteditable") == "false"


PASTE = """async ([name, type, encoded]) => {
  const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0))
  const data = new DataTransfer()
  data.items.add(new File([bytes], name, { type }))
  const target = document.querySelector("[data-ytext='section:summary'] .cm-content")
  target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }))
}"""


async def test_a_pasted_image_is_uploaded_and_placed_at_the_cursor_and_a_refusal_names_its_limit(
    site: Site, browser: Any
) -> None:
    pm_id = await report(site, "PCOBROWSE4")
    editor = await person(site, browser, "heidi@example.com", Role.EDITOR, pm_id)
    await type_into(editor, [" before-image"])
    await editor.evaluate(PASTE, ["graph.png", "image/png", base64.b64encode(png(width=4, height=4)).decode()])
    [image] = await eventually(lambda: _one_image(site, pm_id), timeout=15)
    placed = f"![graph.png](/postmortems/{pm_id}/images/{image.id})"
    await until(editor, f"window.coedit.doc.getText({SECTION!r}).toString().includes({placed!r})")
    assert (await text_of(editor)).index("before-image") < (await text_of(editor)).index(placed), "at the cursor"
    await eventually(lambda: _holds(site, pm_id, placed), timeout=15)  # the store follows the document
    shown = await editor.evaluate(f"fetch({placed[placed.index('(') + 1 : -1]!r}).then((r) => r.status)")
    assert shown == 200, "the inserted link serves the image to the page"

    await editor.evaluate(PASTE, ["notes.png", "image/png", base64.b64encode(b"text pretending to be a PNG").decode()])
    await until(editor, "!document.getElementById('coedit-banner').hidden")
    refusal = await editor.locator("#coedit-banner").inner_text()
    assert "image refused (415)" in refusal and "JPEG, PNG, WebP or GIF" in refusal, refusal
    assert len(await site.api.store.images.list(pm_id)) == 1 and "notes.png" not in await text_of(editor)
    SHOTS.mkdir(parents=True, exist_ok=True)
    await editor.locator("#coedit").scroll_into_view_if_needed()
    await editor.screenshot(path=str(SHOTS / "editor-image-refused-laptop.png"))


async def _one_image(site: Site, pm_id: str) -> list[Any]:
    images = await site.api.store.images.list(pm_id)
    assert len(images) == 1, images
    return images


async def _holds(site: Site, pm_id: str, text: str) -> bool:
    body = await stored(site, pm_id)
    assert text in body, body
    return True
