"""Accessibility in Chromium: axe-core (npm, from package-lock.json) run in every page type — sign-in,
list, report, action-item board, metrics, public summary, conflict page, error page — finds no
serious or critical violation; and the report page works from the keyboard alone: every visible
control is reached with Tab, and forms open (Enter on a summary), fill and submit (Enter, Space).

The board and the metrics page are also photographed at 1366×768 and 390×844 into /tmp/shots-board/.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postmortem.models import ActionItemStatus, Priority, Ref
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.tokens import Role
from tests.api.test_metrics_api import report
from tests.browser.conftest import Site
from tests.browser.test_pages_in_chromium import SIZES, resolved
from tests.factories import new_postmortem, pagerduty_event

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path("/tmp/shots-board")  # looked at by people, never committed
FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, summary"


def axe_or_skip() -> Path:
    """axe-core from `npm ci` (scripts/test.sh runs it); without it these tests skip — and fail in CI."""
    if not AXE.is_file():
        reason = f"{AXE} is missing: run `npm ci` (scripts/test.sh does)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason + " (set CI=1 to make this a failure)")
    return AXE


async def serious_violations(page: Any) -> list[str]:
    """axe's serious and critical violations on the page as it is, one line each."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(axe_or_skip()))
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        await page.set_viewport_size(viewport)
        await page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=False)
    await page.set_viewport_size(SIZES["laptop"])


async def signed_in(site: Site, browser: Any, role: Role, **context: Any) -> Any:
    # The CSP forbids scripts not ours: only axe's own context lets it be injected (the pages'
    # CSP is checked in tests/web).
    page = await (await browser.new_context(bypass_csp=True, **context)).new_page()
    await page.goto(f"{site.url}/signin")
    await page.fill("#token", site.api.tokens[role])
    await page.click("button[type=submit].primary")
    return page


async def seed_program(site: Site) -> str:
    """Reports over several months with causes, items (one overdue), a follow-up: the board and the
    metrics have something to draw."""
    api, now = site.api, datetime.now(UTC)
    ids = []
    for n, (month, team, cause, service) in enumerate(
        (
            ("2026-06-03", "payments", "change_management", "checkout"),
            ("2026-07-14", "payments", "capacity", "checkout"),
            ("2026-08-21", "search", "dependency", "indexer"),
            ("2026-09-09", "search", "change_management", "indexer"),
            ("2026-10-30", "payments", "configuration", "ledger"),
        )
    ):
        start = datetime.fromisoformat(f"{month}T08:00:00+00:00")
        incident = pagerduty_event(f"PA11Y{n}", created_at=start.isoformat()).incident
        incident = incident.model_copy(update={"services": [Ref(id=service.upper(), name=service)]})
        draft = new_postmortem(incident, team=team)
        detect, resolve = 300 + 240 * n, 3600 + 1500 * (n % 3)  # minutes to detect and to resolve vary
        draft = draft.model_copy(
            update={
                "metrics": draft.metrics.model_copy(
                    update={
                        "started_at": start,
                        "detected_at": start + timedelta(seconds=detect),
                        "closed_at": start + timedelta(seconds=resolve),
                        "time_to_detect_seconds": detect,
                        "time_to_resolve_seconds": resolve,
                    }
                )
            }
        )
        pm, _ = await api.store.postmortems.create_if_absent(draft)
        await api.store.postmortems.update(pm.id, pm.version, PostmortemChanges(cause_category=cause), now)
        ids.append(pm.id)
    published = await report(api, "PA11YPUB", "payments", published=True, cause="capacity")
    for pm_id, text, owner, due, status in (
        (ids[0], "Canary every deploy", "alice@example.com", date(2026, 7, 1), ActionItemStatus.OPEN),
        (
            ids[1],
            "Autoscale the checkout pool",
            "bob@example.com",
            now.date() + timedelta(days=20),
            ActionItemStatus.IN_PROGRESS,
        ),
        (ids[2], "Pin the indexer's client", "carol@example.com", date(2026, 9, 1), ActionItemStatus.COMPLETED),
        (published, "Alert on queue depth", "alice@example.com", now.date() + timedelta(days=3), ActionItemStatus.OPEN),
    ):
        await api.store.postmortems.add_action_item(
            pm_id, description=text, owner=owner, due_date=due, priority=Priority.HIGH, status=status, now=now
        )
    await api.store.follow_ups.record(published, 90, {"verdict": {"worked": True}}, now)
    return published


async def test_no_serious_violation_on_any_page_type(site: Site, browser: Any) -> None:
    axe_or_skip()
    published = await seed_program(site)
    pm_id = await resolved(site, f"PA11Y{datetime.now(UTC):%H%M%S%f}", timedelta(hours=1))
    await site.api.store.review.put_export(
        published,
        "public",
        "text/markdown",
        b"# Checkout was down\n\nWhat happened, and what we changed.\n",
        1,
        datetime.now(UTC),
        slug="a11y-checkout",
    )
    found: dict[str, list[str]] = {}
    probe = await (await browser.new_context()).new_page()  # axe does find what it should
    await probe.set_content('<html lang="en"><body><main><button></button><input id="x"></main></body></html>')
    assert any(v.startswith("button-name (critical)") for v in await serious_violations(probe))

    anonymous = await (await browser.new_context(bypass_csp=True)).new_page()
    await anonymous.goto(f"{site.url}/signin")
    found["sign-in"] = await serious_violations(anonymous)
    await anonymous.goto(f"{site.url}/public/postmortems/a11y-checkout")
    found["public summary"] = await serious_violations(anonymous)
    answer = await anonymous.goto(f"{site.url}/postmortems/{pm_id}?t=not-a-link")
    assert answer is not None and answer.status in (401, 403)
    found["error"] = await serious_violations(anonymous)

    editor = await signed_in(site, browser, Role.EDITOR)
    found["list"] = await serious_violations(editor)
    await editor.goto(f"{site.url}/postmortems/{pm_id}")
    await editor.click("#section-summary details summary")  # an open edit form is checked too
    found["report"] = await serious_violations(editor)
    await editor.goto(f"{site.url}/action-items")
    assert await editor.locator("tr.overdue").count() == 1
    found["board"] = await serious_violations(editor)
    await shoot(editor, "board")
    await editor.goto(f"{site.url}/action-items?overdue=1")
    await shoot(editor, "board-overdue")
    await editor.goto(f"{site.url}/insights")
    assert await editor.locator("svg.chart").count() == 5
    found["metrics"] = await serious_violations(editor)
    await shoot(editor, "metrics")
    await editor.screenshot(path=str(SHOTS / "metrics-full-laptop.png"), full_page=True)
    await editor.set_viewport_size(SIZES["phone"])
    await editor.screenshot(path=str(SHOTS / "metrics-full-phone.png"), full_page=True)
    await editor.set_viewport_size(SIZES["laptop"])
    await editor.locator("details.figures summary").first.click()
    found["metrics with a table open"] = await serious_violations(editor)

    await editor.goto(f"{site.url}/postmortems/{pm_id}")
    await editor.click("#section-summary details summary")
    await editor.fill("#body-summary", "Mine.")
    current = await site.api.store.postmortems.get(pm_id)
    theirs = await site.api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"sections": {"summary": {"body": "Theirs."}}},
        headers={**site.api.auth(Role.ADMIN), "If-Match": f'"{current.version}"'},
    )
    assert theirs.status_code == 200
    await editor.click("#section-summary form.edit-section button[type=submit]")
    assert await editor.locator("#merge-body").count() == 1
    found["conflict"] = await serious_violations(editor)

    zh = await signed_in(site, browser, Role.VIEWER, locale="zh-CN")
    await zh.goto(f"{site.url}/insights")
    found["metrics in Chinese"] = await serious_violations(zh)
    await shoot(zh, "metrics-zh")
    await zh.goto(f"{site.url}/action-items")
    found["board in Chinese"] = await serious_violations(zh)
    await shoot(zh, "board-zh")

    assert {page: v for page, v in found.items() if v} == {}


async def tab_to(page: Any, selector: str, limit: int = 400) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def test_the_report_page_works_from_the_keyboard(site: Site, browser: Any) -> None:
    pm_id = await resolved(site, f"PKEY{datetime.now(UTC):%H%M%S%f}", timedelta(hours=1))
    await site.api.store.postmortems.add_action_item(
        pm_id,
        description="Existing item",
        owner=None,
        due_date=None,
        priority=Priority.LOW,
        status=ActionItemStatus.OPEN,
        now=datetime.now(UTC),
    )
    page = await signed_in(site, browser, Role.EDITOR)
    await page.goto(f"{site.url}/postmortems/{pm_id}")

    # Every visible control is in the Tab order (the sequence comes back to the first one).
    controls = await page.evaluate(
        """s => { const all = [...document.querySelectorAll(s)].filter(e => e.checkVisibility() && !e.disabled);
                  all.forEach((e, i) => e.dataset.kb = String(i)); return all.length; }""",
        FOCUSABLE,
    )
    reached: set[str] = set()
    for _ in range(controls * 2 + 10):
        await page.keyboard.press("Tab")
        index = await page.evaluate("() => document.activeElement ? document.activeElement.dataset.kb : null")
        if index is not None:
            reached.add(index)
        if len(reached) == controls:
            break
    missed = await page.evaluate(
        "r => [...document.querySelectorAll('[data-kb]')].filter(e => !r.includes(e.dataset.kb)).map(e => e.outerHTML.slice(0, 80))",
        sorted(reached),
    )
    assert controls > 30 and missed == []

    # Edit the title by keyboard alone: Enter opens the form, Space presses Save.
    await page.goto(f"{site.url}/postmortems/{pm_id}")
    await tab_to(page, ".edit-title summary")
    await page.keyboard.press("Enter")
    await tab_to(page, "#title-input")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("Typed by keyboard")
    await tab_to(page, ".edit-title button[type=submit]")
    await page.keyboard.press("Space")
    await page.wait_for_selector("#notice")
    assert await page.locator("#title").inner_text() == "Typed by keyboard"

    # Add an action item: type, then Enter in a field submits its form.
    await tab_to(page, "form.item.new input[name=description]")
    await page.keyboard.type("Added from the keyboard")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#notice")
    assert "Added from the keyboard" in await page.locator("#action-items").inner_html()

    # Submit for review with Enter on the button: the workflow's refusal (empty sections) is shown.
    await tab_to(page, "#reviewers")
    await page.keyboard.type("rev@example.com")
    await tab_to(page, "button[data-action=submit]")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#refusal")
    assert "required sections" in await page.locator("#refusal").inner_text()
