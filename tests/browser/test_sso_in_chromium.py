"""Single sign-on in Chromium: the sign-in page's "Sign in with <provider>" button, the loopback
OpenID provider's own sign-in page (tests/fakes/oidc.py), back to the list signed in, signed out;
a refused ID token shown on the sign-in page. Photographed at 1280×800 and 390×844 into /tmp/shots/sso/."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from postmortem.config import OidcSettings, ServerSettings
from postmortem.store.store import Store
from postmortem.web import oidc
from tests.api.conftest import Api, running_api
from tests.browser.conftest import OWNER, TEAMS, Later, chromium_or_skip
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOidc, User, oidc_app
from tests.fakes.serve import serve_app

SHOTS = Path("/tmp/shots/sso")  # looked at by people, never committed
SIZES = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@dataclass
class SsoSite:
    url: str
    api: Api
    idp: FakeOidc


@pytest_asyncio.fixture
async def sso_site(dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path) -> AsyncIterator[SsoSite]:
    chromium_or_skip()
    idp = FakeOidc(user=User(email=OWNER), auto_approve=False)  # the provider asks, as with no session there
    later = Later()
    async with serve_app(oidc_app(idp)) as issuer, serve_app(later) as url:
        idp.base_url = issuer
        idp.redirect_uris = [f"{url}/signin/oidc/callback"]
        oidc.forget_cached()
        sections: dict[str, Any] = {
            "server": ServerSettings(public_url=url),
            "oidc": OidcSettings(
                issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, provider_name="Example SSO"
            ),
        }
        async with running_api(dev_env, sqlite_store, tmp_path, teams=TEAMS, **sections) as api:
            later.app = api.app
            yield SsoSite(url=url, api=api, idp=idp)


async def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        await page.set_viewport_size(viewport)
        await page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
    await page.set_viewport_size(SIZES["laptop"])


async def test_the_sign_in_button_signs_in_through_the_provider(sso_site: SsoSite, browser: Any) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    # CSP refusals and script errors; a 401 sign-in page (or the missing favicon) is logged as a failed load.
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda line: errors.append(line.text) if line.text.startswith("Refused to") else None)
    await page.goto(f"{sso_site.url}/action-items")
    button = page.get_by_role("link", name="Sign in with Example SSO")
    await button.wait_for()
    await shoot(page, "signin-with-sso")

    await button.click()
    await page.wait_for_url(f"{sso_site.idp.base_url}/authorize?*")
    await page.get_by_role("button", name=f"Continue as {OWNER}").click()
    await page.wait_for_url(f"{sso_site.url}/action-items")  # back where the sign-in began
    assert OWNER in await page.locator(".who").inner_text()
    session = next(c for c in await context.cookies() if c["name"] == "pm_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["value"].startswith("sso.")
    assert not any(c["name"] == "pm_oidc" for c in await context.cookies())  # the flow's cookie is gone
    await shoot(page, "signed-in-through-sso")

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{sso_site.url}/signin")
    assert not any(c["name"] == "pm_session" for c in await context.cookies())

    # A refused ID token (expired) comes back to the sign-in page with its words and the button.
    now = int(time.time())
    sso_site.idp.claims = {"exp": now - 3600, "iat": now - 7200}
    await page.get_by_role("link", name="Sign in with Example SSO").click()
    await page.get_by_role("button", name=f"Continue as {OWNER}").click()
    refusal = page.locator(".refusal")
    await refusal.wait_for()
    assert "the ID token has expired" in await refusal.inner_text()
    await shoot(page, "sso-refused")
    assert not errors, errors  # the CSP refused nothing, no script failed
    await context.close()
