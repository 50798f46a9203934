"""Live co-editing over a real WebSocket (uvicorn on loopback), with pycrdt clients speaking the
y-websocket protocol: convergence, who may write, REST edits merged in, the store following the
document, and a restart that loses nothing — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from postmortem.config import WebSettings
from postmortem.models import Status, Visibility
from postmortem.report.live_document import TITLE, section_name
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import Api, running_api
from tests.api.test_review_api import drafted, fill, person
from tests.api.test_visibility_api import token
from tests.coedit_client import Editor, ws_url
from tests.factories import new_postmortem, pagerduty_event
from tests.fakes.serve import serve_app
from tests.support import eventually

SECTION = "summary"
NAME = section_name(SECTION)


class Served:
    def __init__(self, url: str, api: Api) -> None:
        self.url = url
        self.api = api

    def doc_url(self, pm_id: str) -> str:
        return ws_url(self.url, pm_id)


@contextlib.asynccontextmanager
async def serving(env: WorkflowEnvironment, store: Store, tmp_path: Path, **web: Any) -> AsyncIterator[Served]:
    async with running_api(env, store, tmp_path, web=WebSettings(**web)) as api:
        async with serve_app(api.app) as url:
            yield Served(url, api)


@pytest_asyncio.fixture
async def served(dev_env: WorkflowEnvironment, any_store: Store, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(dev_env, any_store, tmp_path) as started:
        yield started


async def report(api: Api, incident: str, **changes: Any) -> str:
    pm, _ = await api.store.postmortems.create_if_absent(new_postmortem(pagerduty_event(incident).incident))
    if changes:
        await api.store.postmortems.update(pm.id, pm.version, PostmortemChanges(**changes), datetime.now(UTC))
    return pm.id


async def body(api: Api, pm_id: str, key: str = SECTION) -> str:
    got = await api.http.get(f"/api/postmortems/{pm_id}", headers=api.auth())
    assert got.status_code == 200
    return next(section["body"] for section in got.json()["sections"] if section["key"] == key)


async def synced(editor: Editor) -> Editor:
    await asyncio.wait_for(editor.synced.wait(), 10)
    return editor


@contextlib.asynccontextmanager
async def two_editors(served: Served, pm_id: str) -> AsyncIterator[tuple[Editor, Editor]]:
    """An editor and an admin on the report's document, both synced."""
    api = served.api
    async with (
        Editor(served.doc_url(pm_id), api.auth(Role.EDITOR)) as one,
        Editor(served.doc_url(pm_id), api.auth(Role.ADMIN)) as two,
    ):
        yield await synced(one), await synced(two)


async def test_two_editors_converge_and_the_store_follows(served: Served) -> None:
    api = served.api
    pm_id = await report(api, "PCOEDIT1")
    start = await body(api, pm_id)
    async with two_editors(served, pm_id) as (one, two):
        assert one.text(NAME) == two.text(NAME) == start and one.writable and two.writable
        for index in range(20):  # both type at once, at the start and at the end
            await one.type(NAME, f"a{index} ", 0)
            await two.type(NAME, f" b{index}")

        async def same() -> str | None:
            return one.text(NAME) if one.text(NAME) == two.text(NAME) and one.text(NAME).count(" b") == 20 else None

        merged = await eventually(same, timeout=10)
        assert all(f"a{i} " in merged and f" b{i}" in merged for i in range(20)) and start in merged

        async def stored() -> bool:
            return await body(api, pm_id) == merged

        await eventually(stored, timeout=20)
    got = (await api.http.get(f"/api/postmortems/{pm_id}", headers=api.auth())).json()
    summary = next(section for section in got["sections"] if section["key"] == SECTION)
    assert summary["edited"] is True and got["version"] > 1


async def test_a_nul_typed_live_leaves_every_editor_and_the_store(served: Served) -> None:
    """The REST API refuses NUL and PostgreSQL cannot store it: typed over the socket, the room takes
    it out of the shared document at its save, for every editor, and stores the rest."""
    api = served.api
    pm_id = await report(api, "PCOEDITNUL")
    start = await body(api, pm_id)
    async with two_editors(served, pm_id) as (one, two):
        await one.type(NAME, " before\x00after\x00")
        await one.type(TITLE, "\x00")

        async def clean() -> bool:
            return all(
                editor.text(NAME) == start + " beforeafter" and "\x00" not in editor.text(TITLE)
                for editor in (one, two)
            )

        await eventually(clean, timeout=20)

        async def stored() -> bool:
            return await body(api, pm_id) == start + " beforeafter"

        await eventually(stored, timeout=20)
    got = (await api.http.get(f"/api/postmortems/{pm_id}", headers=api.auth())).json()
    assert "\x00" not in got["title"] and got["title"]


async def test_a_viewer_reads_live_but_cannot_write(served: Served) -> None:
    api = served.api
    pm_id = await report(api, "PCOEDIT2")
    start = await body(api, pm_id)
    async with (
        Editor(served.doc_url(pm_id), api.auth(Role.EDITOR)) as editor,
        Editor(served.doc_url(pm_id), api.auth(Role.VIEWER)) as viewer,
    ):
        await synced(editor), await synced(viewer)
        assert viewer.writable is False and "read-only" in viewer.access_reason
        await viewer.type(NAME, "VIEWER WAS HERE ")
        await editor.type(NAME, " editor typed")

        async def seen() -> bool:
            return " editor typed" in viewer.text(NAME)

        await eventually(seen, timeout=10)

        async def stored() -> bool:
            return await body(api, pm_id) == start + " editor typed"

        await eventually(stored, timeout=20)
        assert "VIEWER" not in editor.text(NAME)


async def test_who_may_not_see_the_report_is_refused(served: Served) -> None:
    api = served.api
    hidden = await report(api, "PCOEDIT3", visibility=Visibility.PRIVATE, author="someone@example.com")
    outsider = await token(api, "outsider@example.com", Role.EDITOR)
    async with Editor(served.doc_url(hidden), outsider) as refused:
        assert (await refused.wait_closed())[0] == 4404
    async with Editor(served.doc_url("pm-nope")) as anonymous:
        code, reason = await anonymous.wait_closed()
        assert code == 4403 and "sign in" in reason
    async with Editor(served.doc_url(hidden), {"Authorization": "Bearer not-a-token"}) as wrong:
        assert (await wrong.wait_closed())[0] == 4403
    foreign = {**api.auth(Role.ADMIN), "Origin": "https://evil.example"}
    foreign.pop("Authorization")
    async with Editor(served.doc_url(hidden), foreign) as cross_site:
        assert (await cross_site.wait_closed())[0] == 4403


async def test_a_patch_reaches_open_editors_and_keeps_their_typing(
    dev_env: WorkflowEnvironment, any_store: Store, tmp_path: Path
) -> None:
    # Saved 2 s after the last keystroke: the PATCH of the version before "LIVE" is not stale yet.
    async with serving(dev_env, any_store, tmp_path, coedit_save_seconds=2) as served:
        await _patch_while_typing(served)


async def _patch_while_typing(served: Served) -> None:
    api = served.api
    pm_id = await report(api, "PCOEDIT4")
    start = await body(api, pm_id)
    async with Editor(served.doc_url(pm_id), api.auth(Role.EDITOR)) as editor:
        await synced(editor)
        current = await api.http.get(f"/api/postmortems/{pm_id}", headers=api.auth())
        await editor.type(NAME, "LIVE ", 0)  # typed while the PATCH (of the version before it) is on its way
        patched = await api.http.patch(
            f"/api/postmortems/{pm_id}",
            json={"sections": {SECTION: {"body": start + " PATCHED"}}, "title": "Renamed live"},
            headers={**api.auth(), "If-Match": current.headers["ETag"]},
        )
        assert patched.status_code == 200, patched.text

        async def both() -> bool:
            text = editor.text(NAME)
            return text.startswith("LIVE ") and text.endswith(" PATCHED") and editor.text("title") == "Renamed live"

        await eventually(both, timeout=10)

        async def stored() -> bool:
            saved = await body(api, pm_id)
            assert saved == "LIVE " + start + " PATCHED", (saved, editor.text(NAME))
            return True

        await eventually(stored, timeout=20)


async def test_losing_the_right_makes_the_socket_read_only_live(served: Served) -> None:
    api = served.api
    pm_id = await report(api, "PCOEDIT5")
    async with Editor(served.doc_url(pm_id), api.auth(Role.EDITOR)) as editor:
        await synced(editor)
        assert editor.writable is True
        await api.store.postmortems.set_status(pm_id, Status.PUBLISHED, datetime.now(UTC))

        async def read_only() -> bool:
            return editor.writable is False

        await eventually(read_only, timeout=10)
        assert "PUBLISHED" in editor.access_reason
        before = await body(api, pm_id)
        await editor.type(NAME, "too late")
        async with Editor(served.doc_url(pm_id), api.auth(Role.ADMIN)) as admin:
            await synced(admin)
            assert "too late" not in admin.text(NAME) and admin.writable is True
        assert await body(api, pm_id) == before


async def test_a_restart_loses_nothing_typed(dev_env: WorkflowEnvironment, any_store: Store, tmp_path: Path) -> None:
    # The first process never saves to the sections (a crash before the debounce): only the update rows hold it.
    async with serving(dev_env, any_store, tmp_path, coedit_save_seconds=30) as first:
        pm_id = await report(first.api, "PCOEDIT6")
        start = await body(first.api, pm_id)
        async with Editor(first.doc_url(pm_id), first.api.auth(Role.EDITOR)) as editor:
            await synced(editor)
            for word in ("kept ", "after ", "restart "):
                await editor.type(NAME, word, 0)

            async def persisted() -> bool:
                rows = await any_store.documents.since(pm_id, 0)
                return "restart" in str(_replay(rows))

            await eventually(persisted, timeout=10)
    async with serving(dev_env, any_store, tmp_path, coedit_compact_every=2) as second:
        async with Editor(second.doc_url(pm_id), second.api.auth(Role.EDITOR)) as again:
            await synced(again)
            assert again.text(NAME) == "restart after kept " + start

            async def stored() -> bool:
                return await body(second.api, pm_id) == "restart after kept " + start

            await eventually(stored, timeout=20)
            await again.type(NAME, "!")

            async def compacted() -> bool:
                return await any_store.documents.count(pm_id) == 1

            await eventually(compacted, timeout=10)
    async with serving(dev_env, any_store, tmp_path) as third:
        async with Editor(third.doc_url(pm_id), third.api.auth(Role.EDITOR)) as last:
            await synced(last)
            assert last.text(NAME) == "restart after kept " + start + "!"


def _replay(rows: list[Any]) -> str:
    from postmortem.report.live_document import load, read

    return str(read(load(*[row.data for row in rows]), [SECTION])[1][SECTION])


async def test_text_typed_live_sends_an_approval_back_and_the_approved_version_is_published(served: Served) -> None:
    """The approval pins the version for text typed in the editor too: alice approves, someone types,
    the store follows and tells the workflow, her approval goes back to pending; what is published is
    the version both approved, with the typed words."""
    api = served.api
    pm_id = await drafted(api, f"PCOPIN{uuid.uuid4().hex[:8].upper()}")  # one workflow id per store (shared server)
    await fill(api, pm_id)
    base = f"/api/postmortems/{pm_id}"
    alice = await person(api, "alice@example.com", Role.REVIEWER)
    bob = await person(api, "bob@example.com", Role.REVIEWER)
    reviewers = {"reviewers": ["alice@example.com", "bob@example.com"]}
    submitted = await api.http.post(f"{base}/submit", json=reviewers, headers=api.auth(Role.EDITOR))
    assert submitted.status_code == 200 and submitted.json()["status"] == "IN_REVIEW", submitted.text
    first = await api.http.post(f"{base}/approve", json={}, headers=alice)
    assert first.status_code == 200 and first.json()["status"] == "IN_REVIEW", first.text
    approved_version = (await api.http.get(base, headers=api.auth())).json()["version"]
    assert await decision_of(api, pm_id, "alice@example.com") == "approved"

    async with Editor(served.doc_url(pm_id), api.auth(Role.EDITOR)) as editor:
        await synced(editor)
        assert editor.writable is True, "an editor may still write while the report is in review"
        await editor.type(NAME, " typed after alice approved")

        async def saved() -> int:
            got = (await api.http.get(base, headers=api.auth())).json()
            summary = next(s["body"] for s in got["sections"] if s["key"] == SECTION)
            assert summary.endswith(" typed after alice approved") and got["version"] > approved_version, got
            return int(got["version"])

        typed_version = await eventually(saved, timeout=20)

        async def alice_pending() -> bool:
            return await decision_of(api, pm_id, "alice@example.com") == "pending"

        await eventually(alice_pending, timeout=20)
        second = await api.http.post(f"{base}/approve", json={}, headers=bob)
        assert second.status_code == 200 and second.json()["status"] == "IN_REVIEW", "alice's approval lapsed"
        again = await api.http.post(f"{base}/approve", json={}, headers=alice)
        assert again.status_code == 200 and again.json()["status"] == "PUBLISHED", again.text
        assert again.json()["published_version"] == typed_version

        async def read_only() -> bool:
            return editor.writable is False

        await eventually(read_only, timeout=10)  # published: the editor loses write access live
        assert "PUBLISHED" in editor.access_reason


async def decision_of(api: Api, pm_id: str, reviewer: str) -> str:
    review = (await api.http.get(f"/api/postmortems/{pm_id}/review", headers=api.auth())).json()
    return str(next(r["decision"] for r in review["reviewers"] if r["reviewer"] == reviewer))
