"""The pages over HTTP (no browser): sign-in and its cookie, CSRF, signed links, the list, the
public summary as HTML, the API docs from our own files. tests/browser drives them in Chromium."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from postmortem.review import signed_links
from postmortem.store.tokens import Role
from postmortem.web.session import LINK_SECRET_NAME
from tests.api.conftest import Api
from tests.api.test_review_api import drafted
from tests.support import eventually, next_working_day

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def csrf_of(http: httpx.AsyncClient, path: str = "/signin") -> str:
    found = CSRF.search((await http.get(path)).text)
    assert found, "the page has a CSRF field"
    return found.group(1)


async def sign_in(api: Api, role: Role = Role.ADMIN) -> None:
    csrf = await csrf_of(api.http)
    signed = await api.http.post("/signin", data={"csrf": csrf, "token": api.tokens[role], "next": "/postmortems"})
    assert signed.status_code == 303 and signed.headers["location"] == "/postmortems"


async def test_sign_in_sets_a_safe_cookie_and_lists_reports(api: Api) -> None:
    pm_id = await drafted(api, "PWEB1")
    first = await api.http.get("/")
    assert first.status_code == 401 and 'name="token"' in first.text
    assert "default-src 'self'" in first.headers["content-security-policy"]
    csrf = CSRF.search(first.text).group(1)  # type: ignore[union-attr]
    wrong = await api.http.post("/signin", data={"csrf": csrf, "token": "pm_nope"})
    assert wrong.status_code == 401 and "Unknown or revoked" in wrong.text
    signed = await api.http.post("/signin", data={"csrf": csrf, "token": api.tokens[Role.VIEWER], "next": "//evil"})
    assert signed.status_code == 303 and signed.headers["location"] == "/postmortems"  # no open redirect
    cookie = signed.headers["set-cookie"]
    assert "pm_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here
    listing = await api.http.get("/postmortems", params={"status": "DRAFT", "sort": "updated"})
    assert listing.status_code == 200 and f"/postmortems/{pm_id}" in listing.text
    assert "viewer" in listing.text
    none = await api.http.get("/postmortems", params={"status": "PUBLISHED"})
    assert f"/postmortems/{pm_id}" not in none.text
    report = await api.http.get(f"/postmortems/{pm_id}")
    assert report.status_code == 200 and 'id="title"' in report.text
    assert 'data-action="' not in report.text  # a viewer who reviews nothing has no buttons


async def test_cookie_is_secure_behind_https(api: Api) -> None:
    csrf = await csrf_of(api.http)
    signed = await api.http.post(
        "/signin", data={"csrf": csrf, "token": api.tokens[Role.ADMIN]}, headers={"X-Forwarded-Proto": "https"}
    )
    assert signed.status_code == 303 and "Secure" in signed.headers["set-cookie"]


async def test_every_form_needs_its_csrf_token(api: Api) -> None:
    pm_id = await drafted(api, "PWEB2")
    await sign_in(api, Role.EDITOR)
    for path, data in (
        ("/signin", {"token": api.tokens[Role.ADMIN]}),
        (f"/postmortems/{pm_id}/edit", {"title": "Hijacked", "version": "1"}),
        (f"/postmortems/{pm_id}/actions/submit", {"reviewers": "a@example.com"}),
        (f"/postmortems/{pm_id}/comments", {"section": "summary", "body": "x"}),
    ):
        for sent in ({}, {"csrf": "not-the-cookie-value-at-all"}):
            refused = await api.http.post(path, data={**data, **sent})
            assert refused.status_code == 403 and "CSRF" in refused.text, path
    assert (await api.store.postmortems.get(pm_id)).title != "Hijacked"


async def test_signed_links(api: Api) -> None:
    pm_id = await drafted(api, "PWEB3")
    other_id = await drafted(api, "PWEB4")
    secret = await api.store.secrets.get_or_create(LINK_SECRET_NAME, datetime.now(UTC))  # none configured
    now = datetime.now(UTC)
    await api.store.tokens.create("ed@example.com", Role.EDITOR, now)
    editor_link = signed_links.sign(secret, pm_id, "ed@example.com", now + timedelta(days=1))
    fresh = httpx.AsyncClient(transport=api.http._transport, base_url="http://testserver")  # no cookies
    async with fresh:
        opened = await fresh.get(f"/postmortems/{pm_id}", params={"t": editor_link})
        assert opened.status_code == 200 and "ed@example.com" in opened.text and "(editor)" in opened.text
        assert 'data-action="submit"' in opened.text  # the person's own rights
        viewer_link = signed_links.sign(secret, pm_id, "nobody@example.com", now + timedelta(days=1))
        as_viewer = await fresh.get(f"/postmortems/{pm_id}", params={"t": viewer_link})
        assert as_viewer.status_code == 200 and "(viewer)" in as_viewer.text and 'data-action="' not in as_viewer.text
        expired = signed_links.sign(secret, pm_id, "ed@example.com", now - timedelta(seconds=1))
        late = await fresh.get(f"/postmortems/{pm_id}", params={"t": expired})
        assert late.status_code == 401 and "expired" in late.text and 'name="token"' in late.text
        moved = await fresh.get(f"/postmortems/{other_id}", params={"t": editor_link})
        assert moved.status_code == 403 and "another post-mortem" in moved.text
        tampered = await fresh.get(f"/postmortems/{pm_id}", params={"t": editor_link[:-2] + "AA"})
        assert tampered.status_code == 403 and "changed" in tampered.text
        # A form posted from the link's page acts as the link's person (and only on its report).
        csrf = CSRF.search(opened.text).group(1)  # type: ignore[union-attr]
        version = (await api.store.postmortems.get(pm_id)).version
        saved = await fresh.post(
            f"/postmortems/{pm_id}/edit", data={"csrf": csrf, "t": editor_link, "title": "Via link", "version": version}
        )
        assert saved.status_code == 303 and f"t={editor_link}" in saved.headers["location"]
        stored = await api.store.postmortems.get(pm_id)
        assert stored.title == "Via link" and stored.author == "ed@example.com"
        denied = await fresh.post(
            f"/postmortems/{pm_id}/edit",
            data={"csrf": csrf, "t": viewer_link, "title": "No", "version": stored.version},
        )
        assert denied.status_code == 403 and "editable by editors" in denied.text
    # The secret the store generated is the one it keeps.
    assert await api.store.secrets.get_or_create(LINK_SECRET_NAME, datetime.now(UTC)) == secret


async def test_stale_edit_offers_to_merge(api: Api) -> None:
    pm_id = await drafted(api, "PWEB5")
    await sign_in(api, Role.EDITOR)
    page = await api.http.get(f"/postmortems/{pm_id}")
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    read_at = (await api.store.postmortems.get(pm_id)).version
    first = await api.http.post(
        f"/postmortems/{pm_id}/edit", data={"csrf": csrf, "section": "summary", "body": "Theirs.", "version": read_at}
    )
    assert first.status_code == 303
    second = await api.http.post(
        f"/postmortems/{pm_id}/edit", data={"csrf": csrf, "section": "summary", "body": "Mine.", "version": read_at}
    )
    assert second.status_code == 412 and "Someone else saved first" in second.text
    assert "Theirs." in second.text and "Mine." in second.text


async def test_docs_are_served_from_our_files(api: Api) -> None:
    for path in ("/docs", "/redoc"):
        page = await api.http.get(path)
        assert page.status_code == 200 and "cdn" not in page.text.lower()
        assert "script-src 'self'" in page.headers["content-security-policy"]
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
            assert (await api.http.get(asset)).status_code == 200, asset
    assert (await api.http.get("/static/app.css")).status_code == 200


async def test_report_page_in_its_language_ui_from_the_browser(api: Api) -> None:
    pm_id = await drafted(api, "PWEB6")
    current = await api.store.postmortems.get(pm_id)
    answer = await api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"language": "zh"},
        headers={**api.auth(Role.EDITOR), "If-Match": f'"{current.version}"'},
    )
    assert answer.status_code == 200, answer.text
    await sign_in(api, Role.VIEWER)
    report = await api.http.get(f"/postmortems/{pm_id}")
    assert '<html lang="zh-CN">' in report.text and "关键指标" in report.text  # the report's language
    listing = await api.http.get("/postmortems", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "全部复盘" in listing.text
    english = await api.http.get("/postmortems", headers={"Accept-Language": "en-GB"})
    assert "All post-mortems" in english.text
    csrf = CSRF.search(english.text).group(1)  # type: ignore[union-attr]
    chosen = await api.http.post("/language", data={"csrf": csrf, "lang": "zh", "next": "/postmortems"})
    assert chosen.status_code == 303 and "lang=zh" in chosen.headers["set-cookie"]
    assert "全部复盘" in (await api.http.get("/postmortems", headers={"Accept-Language": "en"})).text


async def test_comments_and_action_items_from_the_page(api: Api) -> None:
    pm_id = await drafted(api, "PWEB7")
    await sign_in(api, Role.EDITOR)
    page = await api.http.get(f"/postmortems/{pm_id}")
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    commented = await api.http.post(
        f"/postmortems/{pm_id}/comments", data={"csrf": csrf, "section": "summary", "body": "Ask @ana@example.com"}
    )
    assert commented.status_code == 303
    [comment] = await api.store.review.comments(pm_id)
    assert comment.author == "editor" and comment.mentions == ["ana@example.com"]
    unknown = await api.http.post(f"/postmortems/{pm_id}/comments", data={"csrf": csrf, "section": "nope", "body": "x"})
    assert unknown.status_code == 422 and "unknown section" in unknown.text
    added = await api.http.post(
        f"/postmortems/{pm_id}/action-items",
        data={"csrf": csrf, "description": "Add an alert", "owner": "ana@example.com", "due_date": "2030-01-31"},
    )
    assert added.status_code == 303, added.text
    [item] = (await api.store.postmortems.get(pm_id)).action_items
    assert item.owner == "ana@example.com" and item.due_date is not None and item.due_date.isoformat() == "2030-01-31"
    _, version = await api.store.postmortems.get_action_item(pm_id, item.id)
    edited = await api.http.post(
        f"/postmortems/{pm_id}/action-items/{item.id}",
        data={"csrf": csrf, "version": str(version), "description": "Add an alert", "status": "IN_PROGRESS"},
    )
    assert edited.status_code == 303, edited.text
    stale = await api.http.post(
        f"/postmortems/{pm_id}/action-items/{item.id}", data={"csrf": csrf, "version": str(version), "status": "OPEN"}
    )
    assert stale.status_code == 412 and "someone else changed this action item first" in stale.text
    shown = await api.http.get(f"/postmortems/{pm_id}")
    assert "Ask @ana@example.com" in shown.text and "Add an alert" in shown.text
    bad_date = await api.http.post(
        f"/postmortems/{pm_id}/action-items", data={"csrf": csrf, "description": "x", "due_date": "soon"}
    )
    assert bad_date.status_code == 422 and "due_date" in bad_date.text


async def test_an_unknown_public_summary_is_a_json_404(api: Api) -> None:
    missing = await api.http.get("/public/postmortems/not-a-slug")
    assert missing.status_code == 404 and missing.json()["detail"]


async def test_reschedule_from_the_page_in_the_meeting_zone(api: Api) -> None:
    pm_id = await drafted(api, "PWEB8")

    async def planned() -> object:
        return await api.store.meetings.get(pm_id)

    meeting = await eventually(planned, timeout=30)
    await sign_in(api, Role.EDITOR)
    page = await api.http.get(f"/postmortems/{pm_id}")
    assert f"({meeting.timezone})" in page.text  # type: ignore[attr-defined]
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    saturday = datetime.now(UTC) + timedelta(days=(5 - datetime.now(UTC).weekday()) % 7 + 7)
    weekend = f"{saturday.date().isoformat()}T10:00"
    refused = await api.http.post(f"/postmortems/{pm_id}/meeting", data={"csrf": csrf, "start": weekend})
    assert "outside the team&#39;s working hours" in refused.text, "the workflow's reason, in its words"
    forced = await api.http.post(f"/postmortems/{pm_id}/meeting", data={"csrf": csrf, "start": weekend, "force": "on"})
    assert forced.status_code == 303, forced.text
    stored = await api.store.meetings.get(pm_id)
    assert stored is not None and stored.start.astimezone(ZoneInfo(stored.timezone)).weekday() == 5
    zone = ZoneInfo(stored.timezone)
    day = next_working_day(datetime.now(UTC) + timedelta(days=10), stored.timezone).astimezone(zone).date().isoformat()
    moved = await api.http.post(f"/postmortems/{pm_id}/meeting", data={"csrf": csrf, "start": f"{day}T10:00"})
    assert moved.status_code == 303, moved.text
    stored = await api.store.meetings.get(pm_id)
    assert stored is not None
    local = stored.start.astimezone(ZoneInfo(stored.timezone))
    assert (local.date().isoformat(), local.hour) == (day, 10)
    shown = await api.http.get(f"/postmortems/{pm_id}")
    assert f"{day} 10:00 {local:%Z}" in shown.text, "the meeting in its own zone's time, UTC beside it"
    viewer = await api.http.post(
        f"/postmortems/{pm_id}/meeting",
        data={"csrf": csrf, "start": "2030-06-04T10:00"},
        headers={"Cookie": f"pm_session={api.tokens[Role.VIEWER]}; pm_csrf={csrf}"},
    )
    assert viewer.status_code == 403 and "needs the editor role" in viewer.text


def test_only_a_local_path_is_a_place_to_go_after_signing_in() -> None:
    from postmortem.web.routes import _local

    assert _local("/postmortems/pagerduty-P1") == "/postmortems/pagerduty-P1"
    for elsewhere in ("//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example", "", None, "x"):
        assert _local(elsewhere) == "/postmortems", elsewhere


async def test_a_form_with_a_nul_character_is_refused_in_words_and_nothing_is_stored(api: Api) -> None:
    """The JSON API refuses NUL in text (422); a form posted from a page did store it (`title=a%00b`)."""
    pm_id = await drafted(api, "PWEB9")
    await sign_in(api, Role.EDITOR)
    csrf = CSRF.search((await api.http.get(f"/postmortems/{pm_id}")).text).group(1)  # type: ignore[union-attr]
    before = await api.store.postmortems.get(pm_id)
    for field, data in (
        ("title", {"csrf": csrf, "title": "Broken\x00title", "version": str(before.version)}),
        ("body", {"csrf": csrf, "section": "summary", "body": "a\x00b", "version": str(before.version)}),
    ):
        refused = await api.http.post(f"/postmortems/{pm_id}/edit", data=data)
        assert refused.status_code == 422, refused.text
        assert f"the field &#39;{field}&#39; contains a NUL character (U+0000)" in refused.text, refused.text
    after = await api.store.postmortems.get(pm_id)
    assert (after.title, after.version, after.sections) == (before.title, before.version, before.sections)
    clean = await api.http.post(
        f"/postmortems/{pm_id}/edit", data={"csrf": csrf, "title": "Clean title", "version": str(before.version)}
    )
    assert clean.status_code == 303 and (await api.store.postmortems.get(pm_id)).title == "Clean title"
