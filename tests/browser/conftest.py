"""The pages in Debian's Chromium (headless), driven by Playwright's Python package: never a
downloaded browser. The app runs as tests/api/conftest.py runs it (dev Temporal, a worker, the relay),
served by uvicorn on loopback so the browser can reach it, with a real SMTP inbox (aiosmtpd)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.testing import WorkflowEnvironment

from postmortem.config import ServerSettings, SmtpSettings
from postmortem.store.store import Store
from tests.api.conftest import Api, running_api
from tests.fakes.serve import serve_app
from tests.fakes.smtp_server import Inbox, smtp_inbox

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path("/tmp/shots-web")  # looked at by people, never committed
OWNER = "owner@example.com"
REVIEWER = "rev@example.com"
TEAMS = f"""
[default]
timezone = "Europe/Berlin"
organizer = "lead@example.com"

[people]
"Rita Reviewer" = "{REVIEWER}"

[services.pig208]
owners = ["{OWNER}"]
"""


def chromium_or_skip() -> str:
    """Chromium's path; without it (or Playwright) the browser tests skip — and fail in CI."""
    reason = None
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is not installed (scripts/test.sh installs Debian's chromium as root)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (the test extra)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must install it")
        pytest.skip(reason + " (set CI=1 to make this a failure)")
    return CHROMIUM


def editor_bundle_or_skip() -> None:
    """The live editor's bundle is built by bootstrap.sh (npm + esbuild); without it the co-editing
    pages have no editor: those tests skip — and fail in CI."""
    from postmortem.web.routes import EDITOR_BUNDLE

    if EDITOR_BUNDLE.exists():
        return
    reason = f"the editor's bundle {EDITOR_BUNDLE.name} is not built (scripts/bootstrap.sh builds it)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must build it")
    pytest.skip(reason + " (set CI=1 to make this a failure)")


@pytest.fixture
def editor_bundle() -> None:
    editor_bundle_or_skip()


class Later:
    """An ASGI app set after the server started: the app needs the server's URL (its public URL)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@dataclass
class Site:
    url: str
    api: Api
    inbox: Inbox


@pytest_asyncio.fixture
async def site(dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path) -> AsyncIterator[Site]:
    chromium_or_skip()
    later = Later()
    with smtp_inbox() as inbox:
        async with serve_app(later) as url:
            sections: dict[str, Any] = {
                "smtp": SmtpSettings(host=inbox.host, port=inbox.port, starttls=False, sender="postmortem@example.com"),
                "server": ServerSettings(public_url=url),
            }
            async with running_api(dev_env, sqlite_store, tmp_path, teams=TEAMS, **sections) as api:
                later.app = api.app
                yield Site(url=url, api=api, inbox=inbox)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            with contextlib.suppress(Exception):
                await launched.close()
