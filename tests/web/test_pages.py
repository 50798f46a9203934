"""The pages over HTTP (no browser): sign-in and its cookie, CSRF, signed links, the list, the
public summary as HTML, the API docs from our own files. tests/browser drives them in Chromium."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from postmortem.review import signed_links
from postmortem.store.tokens import Role
from postmortem.web.session import LINK_SECRET_NAME
from tests.api.conftest import Api
from tests.api.test_review_api import drafted

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
