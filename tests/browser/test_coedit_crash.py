"""The live editor survives SIGKILL of the API (#14): two pages typing into a report served by a real
`postmortem api` process; the process is killed mid-typing and started again on the same port; the
pages reconnect, nothing typed is lost, and a page opened afterwards (and the REST API) reads it all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.browser.conftest import chromium_or_skip
from tests.factories import new_postmortem, pagerduty_event
from tests.support import eventually, free_port

SECTION = "section:summary"
# The slower tier (CI runs it): real pages typing for a while. Without the editor's bundle, a failure in CI.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("editor_bundle")]


@contextlib.contextmanager
def api_process(folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "POSTMORTEM_DATA_DIR": str(folder),
        "POSTMORTEM_PORT": str(port),
        "POSTMORTEM_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # the document needs no Temporal
        "POSTMORTEM_LOG_LEVEL": "WARNING",
    }
    log = (folder / f"api-{port}.log").open("ab")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("postmortem")), "api"], env=env, stdout=log, stderr=log, cwd=folder
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        log.close()


async def up(url: str) -> None:
    async def healthy() -> bool:
        async with httpx.AsyncClient(trust_env=False) as http:
            try:
                return (await http.get(f"{url}/healthz")).status_code < 500
            except httpx.HTTPError:
                return False

    await eventually(healthy, timeout=60, interval=0.2)


async def text_of(page: Any) -> str:
    return str(await page.evaluate(f"window.coedit.doc.getText({SECTION!r}).toString()"))


async def open_page(browser: Any, url: str, secret: str, pm_id: str) -> Any:
    context = await browser.new_context()
    await context.add_cookies([{"name": "pm_session", "value": secret, "url": url}])
    page = await context.new_page()
    await page.goto(f"{url}/postmortems/{pm_id}")

    async def synced() -> bool:
        return bool(await page.evaluate("document.getElementById('coedit')?.dataset.synced === 'true'"))

    await eventually(synced, timeout=20)
    return page


async def test_sigkill_of_the_api_while_two_pages_type_loses_nothing(tmp_path: Path, browser: Any) -> None:
    chromium_or_skip()
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'postmortem.db'}")
    try:
        pm, _ = await store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PCOKILL").incident))
        _, secret = await store.tokens.create("kim@example.com", Role.EDITOR, datetime.now(UTC))
    finally:
        await store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    words = {0: [f" one{i}" for i in range(8)], 1: [f" two{i}" for i in range(8)]}
    with api_process(tmp_path, port) as first:
        await up(url)
        pages = [await open_page(browser, url, secret, pm.id) for _ in range(2)]

        async def type_words(index: int) -> None:
            page = pages[index]
            await page.locator(f"[data-ytext='{SECTION}'] .cm-content").click()
            await page.keyboard.press("Control+End" if index else "Control+Home")
            for number, word in enumerate(words[index]):
                await page.keyboard.type(word, delay=5)
                if number == 4 and index == 0:
                    first.send_signal(signal.SIGKILL)  # mid-typing

        await asyncio.gather(type_words(0), type_words(1))
        first.wait(10)
    with api_process(tmp_path, port):
        await up(url)
        everything = [word for index in words for word in words[index]]

        async def merged() -> str:
            texts = [await text_of(page) for page in pages]
            assert len(set(texts)) == 1 and all(word in texts[0] for word in everything), texts
            return texts[0]

        final = await eventually(merged, timeout=30)
        later = await open_page(browser, url, secret, pm.id)
        assert await text_of(later) == final

        async def stored() -> bool:
            async with httpx.AsyncClient(trust_env=False) as http:
                got = await http.get(f"{url}/api/postmortems/{pm.id}", headers={"Authorization": f"Bearer {secret}"})
            body = next(s["body"] for s in got.json()["sections"] if s["key"] == "summary")
            assert body == final, (body, final)
            return True

        await eventually(stored, timeout=20)
