"""Single sign-on for the pages: `GET /signin/oidc` sends the browser to the identity provider,
`GET /signin/oidc/callback` takes it back, checks the answer and the ID token (postmortem/web/oidc.py)
and signs the person in with a session cookie like a token's (sso_session.py).

Who the person is: the ID token's email claim (`POSTMORTEM_OIDC_EMAIL_CLAIM`), the name a person's
API token carries and the teams file knows. They may sign in when their email's domain is one of
`POSTMORTEM_OIDC_ALLOWED_DOMAINS`, or (without that list) when the service knows them already: an
API token of that name, the teams file, or a group that `POSTMORTEM_OIDC_GROUP_ROLES` maps. Their
role is the strongest their groups map to and their own token has (viewer otherwise); their team
the first `POSTMORTEM_OIDC_GROUP_TEAMS` maps, else their token's.

Both routes are for anyone (they are how one signs in) and name no report. Starting is a plain GET
link, not a form: a form's redirect to the provider would break the pages' CSP `form-action 'self'`,
and starting a sign-in changes nothing here; the callback is bound to the browser that started it
by the flow cookie's state (no login CSRF).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from postmortem.api.services import Services, get_services
from postmortem.config import OidcSettings, reveal
from postmortem.store.tokens import Role
from postmortem.web import oidc, sso_session
from postmortem.web import session as web_session
from postmortem.web.routes import _local
from postmortem.web.session import PageError

router = APIRouter(include_in_schema=False)
CALLBACK_PATH = "/signin/oidc/callback"


class SsoRefused(PageError):
    """A sign-in that did not happen: on the sign-in page with its words (`retry`), else an error page."""

    def __init__(self, status: int, message: str, *, retry: bool = True, next: str = "/postmortems") -> None:
        super().__init__(status, message, sign_in=retry, next=next, failed=True)


def _settings(services: Services) -> OidcSettings:
    settings = services.settings.oidc
    if not settings.enabled:
        raise PageError(
            404, "single sign-on is not configured here (POSTMORTEM_OIDC_ISSUER, POSTMORTEM_OIDC_CLIENT_ID)"
        )
    return settings


def redirect_uri(request: Request, services: Services) -> str:
    """Our callback as the provider must have it registered: under the public URL when one is set."""
    base = services.settings.server.public_url or str(request.base_url)
    return base.rstrip("/") + CALLBACK_PATH


def _http(services: Services) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=services.settings.http.timeout_seconds, follow_redirects=False)


@router.get("/signin/oidc")
async def start(request: Request, next: str | None = None) -> Response:
    """Anyone: the authorization request (code flow, PKCE S256, state, nonce) as a redirect."""
    services = await get_services(request)
    settings = _settings(services)
    target = _local(next)
    assert settings.issuer is not None and settings.client_id is not None
    try:
        async with _http(services) as http:
            found = await oidc.provider(http, settings.issuer)
    except oidc.OidcError as exc:
        raise SsoRefused(exc.status, exc.message, next=target) from exc
    asked = oidc.authorization_request(
        found, client_id=settings.client_id, redirect_uri=redirect_uri(request, services), scopes=settings.scopes
    )
    now = int(datetime.now(UTC).timestamp())
    flow = sso_session.Flow(
        state=asked.state,
        nonce=asked.nonce,
        verifier=asked.code_verifier,
        next=target,
        expires=now + sso_session.FLOW_SECONDS,
    )
    response = RedirectResponse(asked.url, status_code=303)
    web_session.set_cookie(
        response,
        request,
        services,
        sso_session.FLOW_COOKIE,
        sso_session.seal_flow(await web_session.link_secret(services), flow),
        max_age=sso_session.FLOW_SECONDS,
        path=sso_session.FLOW_PATH,
    )
    return response


@router.get(CALLBACK_PATH)
async def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    """Anyone: the provider's answer; on success the session cookie and a redirect to where the
    sign-in began; every refusal a 4xx page that says why (503/502 when the provider is away)."""
    services = await get_services(request)
    settings = _settings(services)
    assert settings.issuer is not None and settings.client_id is not None
    now = datetime.now(UTC)
    secret = await web_session.link_secret(services)
    sealed = request.cookies.get(sso_session.FLOW_COOKIE)
    flow = sso_session.open_flow(secret, sealed, now) if sealed else None
    if flow is None:
        raise SsoRefused(400, "this sign-in expired or was started in another browser: sign in again")
    if not state or not hmac.compare_digest(state.encode(), flow.state.encode()):
        raise SsoRefused(400, "the identity provider's answer does not belong to this sign-in (state): sign in again")
    if error:
        words = f"{error}: {error_description}" if error_description else error
        raise SsoRefused(
            403 if error == "access_denied" else 400, f"the identity provider refused the sign-in ({words})"
        )
    if not code:
        raise SsoRefused(400, "the identity provider's answer carries no code: sign in again")
    try:
        async with _http(services) as http:
            found = await oidc.provider(http, settings.issuer)
            id_token = await oidc.exchange_code(
                http,
                found,
                code=code,
                redirect_uri=redirect_uri(request, services),
                code_verifier=flow.verifier,
                client_id=settings.client_id,
                client_secret=reveal(settings.client_secret),
            )
            claims = await oidc.verify_id_token(http, found, id_token, client_id=settings.client_id, nonce=flow.nonce)
    except oidc.OidcError as exc:
        raise SsoRefused(exc.status, exc.message, next=flow.next) from exc
    signed_in = await person(services, settings, claims, now)
    response = RedirectResponse(flow.next, status_code=303)
    web_session.set_cookie(
        response,
        request,
        services,
        web_session.SESSION_COOKIE,
        sso_session.seal_session(secret, signed_in),
        max_age=settings.session_hours * 3600,
    )
    response.delete_cookie(sso_session.FLOW_COOKIE, path=sso_session.FLOW_PATH)
    return response


def groups_of(claims: dict[str, Any], claim: str) -> list[str]:
    """The groups claim as a list: providers send a list, some a space- or comma-separated string."""
    value = claims.get(claim)
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


async def person(
    services: Services, settings: OidcSettings, claims: dict[str, Any], now: datetime
) -> sso_session.SsoSession:
    """The session of the person the claims name, or a 403 that says why they may not sign in."""
    email = claims.get(settings.email_claim)
    if not isinstance(email, str) or "@" not in email:
        raise SsoRefused(
            403,
            f"the identity provider sent no email in the {settings.email_claim!r} claim: ask its administrator to "
            "release it (the email scope) or set POSTMORTEM_OIDC_EMAIL_CLAIM",
            retry=False,
        )
    email = email.strip().lower()  # as token names and the teams file compare: without case
    if claims.get("email_verified") is False and settings.email_claim == "email":
        raise SsoRefused(403, f"the identity provider has not verified the email {email}", retry=False)
    domain = email.rsplit("@", 1)[1].casefold()
    allowed = [entry.casefold().lstrip("@") for entry in settings.allowed_domains]
    if allowed and domain not in allowed:
        raise SsoRefused(403, f"{email} may not sign in here: only {', '.join(allowed)} addresses may", retry=False)
    groups = groups_of(claims, settings.groups_claim)
    mapped = [Role(settings.group_roles[group]) for group in groups if group in settings.group_roles]
    role = max(mapped, key=lambda role: role.rank, default=None)
    team = next((team for group, team in settings.group_teams.items() if group in groups), None)
    if not allowed and role is None and not await _known(services, email):
        raise SsoRefused(
            403,
            f"{email} is not known here: ask an admin for an API token in your name, to add you to the teams file, "
            "or to map one of your groups to a role (POSTMORTEM_OIDC_GROUP_ROLES)",
            retry=False,
        )
    expires = int(now.timestamp()) + settings.session_hours * 3600
    return sso_session.SsoSession(email=email, role=role, team=team, expires=expires)


async def _known(services: Services, email: str) -> bool:
    wanted = email.casefold()
    if wanted in services.teams.known_people():
        return True
    return any(t.revoked_at is None and t.name.casefold() == wanted for t in await services.store.tokens.list())
