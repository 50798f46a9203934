"""Single sign-on over HTTP against the loopback OpenID provider (tests/fakes/oidc.py): the whole
code flow with the redirects followed by hand, the ID token's checks (nonce, state, audience,
issuer, expiry, signature), key rotation, who may sign in and with which role, and the provider away."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from postmortem.config import OidcSettings
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from postmortem.web import oidc
from postmortem.web.sso_session import FLOW_COOKIE
from tests.api.conftest import Api, running_api
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOidc, User, oidc_app
from tests.fakes.serve import loopback_client, serve_app
from tests.support import free_port
from tests.web.test_pages import csrf_of

CALLBACK = "http://testserver/signin/oidc/callback"
PERSON = "pat@example.com"  # the teams file's [people] (tests/api/conftest.py): known, no token


@dataclass
class Sso:
    api: Api
    idp: FakeOidc


def sso_settings(issuer: str, **changes: Any) -> OidcSettings:
    values: dict[str, Any] = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "provider_name": "Example IdP",
        "group_roles": {"pm-admins": "admin", "sre": "editor"},
        "group_teams": {"team-payments": "payments"},
    }
    return OidcSettings(**{**values, **changes})


@contextlib.asynccontextmanager
async def provider() -> AsyncIterator[FakeOidc]:
    idp = FakeOidc(redirect_uris=[CALLBACK], user=User(email=PERSON))
    async with serve_app(oidc_app(idp)) as url:
        idp.base_url = url
        oidc.forget_cached()
        yield idp


@contextlib.asynccontextmanager
async def sso_site(dev_env: WorkflowEnvironment, store: Store, tmp_path: Path, **changes: Any) -> AsyncIterator[Sso]:
    async with provider() as idp:
        async with running_api(dev_env, store, tmp_path, oidc=sso_settings(idp.base_url, **changes)) as api:
            yield Sso(api=api, idp=idp)


@pytest_asyncio.fixture
async def sso(dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path) -> AsyncIterator[Sso]:
    async with sso_site(dev_env, sqlite_store, tmp_path) as started:
        yield started


async def to_provider(sso: Sso, next: str = "/postmortems") -> httpx.Response:
    """The browser at the provider: our redirect followed (the provider's answer, unfollowed)."""
    start = await sso.api.http.get("/signin/oidc", params={"next": next})
    assert start.status_code == 303, start.text
    assert start.headers["location"].startswith(f"{sso.idp.base_url}/authorize?")
    async with loopback_client() as browser:
        return await browser.get(start.headers["location"])


async def sign_in(sso: Sso, next: str = "/postmortems", **tamper: str) -> httpx.Response:
    """The whole flow by hand: us → the provider → our callback (its query changed by `tamper`)."""
    at_provider = await to_provider(sso, next)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    query = {name: values[-1] for name, values in parse_qs(back.query).items()} | tamper
    return await sso.api.http.get(back.path, params=query)


def session_cookie(response: httpx.Response) -> str:
    return next((c for c in response.headers.get_list("set-cookie") if c.startswith("pm_session=")), "")


async def test_the_whole_flow_signs_a_known_person_in_and_out(sso: Sso) -> None:
    page = await sso.api.http.get("/signin")
    assert "Sign in with Example IdP" in page.text and 'href="/signin/oidc?next=%2Fpostmortems"' in page.text
    assert 'name="token"' in page.text  # the token sign-in stays

    at_provider = await to_provider(sso, "/postmortems?status=DRAFT")
    asked = sso.idp.requests[-1].params
    assert asked["response_type"] == "code" and asked["client_id"] == CLIENT_ID
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["scope"] == "openid email profile" and asked["nonce"] and asked["state"]
    assert asked["redirect_uri"] == CALLBACK
    back = urlsplit(at_provider.headers["location"])
    done = await sso.api.http.get(back.path + "?" + back.query)

    assert done.status_code == 303 and done.headers["location"] == "/postmortems?status=DRAFT"
    cookie = session_cookie(done)
    assert cookie.startswith("pm_session=sso.") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here
    assert any(c.startswith(f"{FLOW_COOKIE}=") and "Max-Age=0" in c for c in done.headers.get_list("set-cookie"))
    token_request = next(r for r in sso.idp.requests if r.path == "/token")
    assert token_request.headers["authorization"].startswith("Basic ")  # client_secret_basic, as discovered
    assert b"code_verifier=" in token_request.body

    listing = await sso.api.http.get("/postmortems")
    assert listing.status_code == 200 and PERSON in listing.text and "viewer" in listing.text

    # The code was spent: the provider's answer replayed is refused, the session stays as it was.
    replayed = await sso.api.http.get(back.path + "?" + back.query)
    assert replayed.status_code == 400 and "sign in again" in replayed.text

    csrf = await csrf_of(sso.api.http, "/postmortems")
    out = await sso.api.http.post("/signout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert (await sso.api.http.get("/postmortems")).status_code == 401


async def test_groups_give_a_role_and_a_team_and_a_token_counts_too(sso: Sso) -> None:
    sso.idp.user = User(email="new.admin@example.com", groups=["pm-admins", "team-payments"])
    assert (await sign_in(sso)).status_code == 303
    listing = await sso.api.http.get("/postmortems")
    assert "new.admin@example.com" in listing.text and "admin" in listing.text
    sso.api.http.cookies.clear()

    # An editor's own API token is the stronger right (no group maps for them).
    await sso.api.store.tokens.create("ed@example.com", Role.EDITOR, datetime.now(UTC), team="search")
    sso.idp.user = User(email="Ed@Example.com", groups=["unmapped"])
    assert (await sign_in(sso)).status_code == 303
    signed_in = (await sso.api.http.get("/postmortems")).text
    assert "<strong>ed@example.com</strong> (editor)" in signed_in  # the token's name, whatever the case


def expired() -> dict[str, Any]:
    now = int(time.time())
    return {"exp": now - 3600, "iat": now - 7200}


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"nonce": "a-nonce-of-another-sign-in"}, "nonce is not the one this sign-in sent"),
        ({"aud": "another-client"}, "is for another client"),
        ({"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}, "its azp is not this service"),
        ({"iss": "https://evil.example.com"}, "issued by another issuer"),
        ({"nonce": None}, "nonce is not the one"),
        ({"sub": None}, "lacks a required claim"),
        (expired(), "the ID token has expired"),
    ],
    ids=["nonce", "audience", "azp", "issuer", "no-nonce", "no-sub", "expired"],
)
async def test_a_wrong_id_token_is_refused(sso: Sso, claims: dict[str, Any], words: str) -> None:
    sso.idp.claims = claims
    refused = await sign_in(sso)
    assert refused.status_code == 401 and words in refused.text, refused.text
    assert 'class="refusal"' in refused.text and "Sign in with Example IdP" in refused.text  # try again from here
    assert not session_cookie(refused)
    assert (await sso.api.http.get("/postmortems")).status_code == 401


async def test_a_wrong_state_or_a_missing_flow_is_refused(sso: Sso) -> None:
    tampered = await sign_in(sso, state="state-of-an-attackers-sign-in")
    assert tampered.status_code == 400 and "does not belong to this sign-in (state)" in tampered.text
    assert not session_cookie(tampered)
    # The provider's answer carried to another browser (no flow cookie there): login CSRF refused.
    at_provider = await to_provider(sso)
    sso.api.http.cookies.clear()
    elsewhere = await sso.api.http.get(at_provider.headers["location"].removeprefix("http://testserver"))
    assert elsewhere.status_code == 400 and "started in another browser" in elsewhere.text
    # A hand-made callback (no code, no state) and a provider's own refusal.
    assert (await sso.api.http.get("/signin/oidc/callback")).status_code == 400
    sso.idp.deny = True
    denied = await sign_in(sso)
    assert denied.status_code == 403 and "access_denied: the user said no" in denied.text


async def test_rotated_keys_are_read_again_and_an_unknown_key_is_refused(sso: Sso) -> None:
    assert (await sign_in(sso)).status_code == 303
    assert sso.idp.fetched("/jwks") == 1
    sso.api.http.cookies.clear()
    assert (await sign_in(sso)).status_code == 303
    assert sso.idp.fetched("/jwks") == 1  # kept while the token's kid is in them
    sso.api.http.cookies.clear()

    sso.idp.rotate()
    assert (await sign_in(sso)).status_code == 303
    assert sso.idp.fetched("/jwks") == 2  # the new kid was not there: read again, once
    sso.api.http.cookies.clear()

    sso.idp.sign_with_unpublished = True
    refused = await sign_in(sso)
    assert refused.status_code == 401 and "which the provider's JWKS does not hold" in unescape(refused.text)
    assert sso.idp.fetched("/jwks") == 3


async def test_a_token_signed_with_the_client_secret_is_refused(sso: Sso) -> None:
    """HS256 keyed with the client secret (or alg none) is never accepted, whatever the header says."""
    from joserfc import jwt
    from joserfc.jwk import OctKey

    async with loopback_client() as http:
        found = await oidc.provider(http, sso.idp.base_url)
        secret = OctKey.import_key(CLIENT_SECRET)
        forged = jwt.encode({"alg": "HS256"}, {"iss": found.issuer, "aud": CLIENT_ID}, secret)
        with pytest.raises(oidc.OidcError) as refused:
            await oidc.verify_id_token(http, found, forged, client_id=CLIENT_ID, nonce="n")
        assert refused.value.status == 401 and "signature is not valid" in refused.value.message
        with pytest.raises(oidc.OidcError) as garbage:
            await oidc.verify_id_token(http, found, "not-a-jwt", client_id=CLIENT_ID, nonce="n")
        assert garbage.value.status == 401


async def test_who_may_sign_in(dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path) -> None:
    async with sso_site(dev_env, sqlite_store, tmp_path) as sso:
        sso.idp.user = User(email="stranger@example.com")
        unknown = await sign_in(sso)
        assert unknown.status_code == 403 and "stranger@example.com is not known here" in unknown.text
        sso.idp.user = User(email=PERSON, email_verified=False)
        unverified = await sign_in(sso)
        assert unverified.status_code == 403 and "has not verified the email" in unverified.text
        sso.idp.user = User(email=PERSON)
        sso.idp.claims = {"email": None}
        no_email = await sign_in(sso)
        assert no_email.status_code == 403 and "sent no email in the 'email' claim" in unescape(no_email.text)
    async with sso_site(dev_env, sqlite_store, tmp_path, allowed_domains=["example.org"]) as sso:
        sso.idp.user = User(email=PERSON)  # known, but not of the allowed domain
        outside = await sign_in(sso)
        assert outside.status_code == 403 and "only example.org addresses may" in outside.text
        sso.idp.user = User(email="anyone@Example.org")
        assert (await sign_in(sso)).status_code == 303  # the domain is enough: a viewer
        assert "viewer" in (await sso.api.http.get("/postmortems")).text


async def test_the_provider_away_is_a_clear_page(sso: Sso) -> None:
    sso.idp.fail_with(500, path="/.well-known")
    down = await sso.api.http.get("/signin/oidc")
    assert down.status_code == 502 and "answered 500 to the discovery document request" in down.text
    sso.idp.heal()
    at_provider = await to_provider(sso)
    sso.idp.fail_with(500, path="/token")
    back = await sso.api.http.get(at_provider.headers["location"].removeprefix("http://testserver"))
    assert back.status_code == 502 and "answered 500 to the token request" in back.text
    assert 'name="token"' in back.text  # the token sign-in is still there


async def test_an_issuer_that_does_not_answer(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    oidc.forget_cached()
    gone = f"http://127.0.0.1:{free_port()}"
    async with running_api(dev_env, sqlite_store, tmp_path, oidc=sso_settings(gone)) as api:
        page = await api.http.get("/signin/oidc")
        assert page.status_code == 503 and "the identity provider did not answer" in page.text


async def test_the_cookie_is_secure_behind_https(sso: Sso) -> None:
    at_provider = await to_provider(sso)
    back = at_provider.headers["location"].removeprefix("http://testserver")
    done = await sso.api.http.get(back, headers={"X-Forwarded-Proto": "https"})
    assert done.status_code == 303 and "Secure" in session_cookie(done)


async def test_a_forged_or_expired_session_is_no_session(sso: Sso) -> None:
    assert (await sign_in(sso)).status_code == 303
    value = sso.api.http.cookies["pm_session"]
    body, _, mac = value.removeprefix("sso.").partition(".")
    for forged in (f"sso.{body}.{'A' * len(mac)}", f"sso.{body[:-2]}.{mac}", "sso.", "sso.x.y"):
        sso.api.http.cookies.set("pm_session", forged)
        assert (await sso.api.http.get("/postmortems")).status_code == 401, forged


async def test_without_settings_there_is_no_single_sign_on(api: Api) -> None:
    page = await api.http.get("/signin")
    assert "/signin/oidc" not in page.text and 'name="token"' in page.text
    for path in ("/signin/oidc", "/signin/oidc/callback?code=x&state=y"):
        answer = await api.http.get(path)
        assert answer.status_code == 404 and "single sign-on is not configured" in answer.text
