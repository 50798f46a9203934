"""Who a page request speaks for, and the cookies that carry it.

Two ways in, judged by the same role rules as the API: the sign-in cookie (HttpOnly, SameSite=Lax,
Secure over HTTPS: an API token, or a single sign-on session, see sso_session.py) or a signed link (`?t=`, bound to one report and one person; the
person's rights are those of their own API token, viewer for someone known only from the teams file).
Every form carries a CSRF token that must equal the `pm_csrf` cookie (double submit): another site
can make a browser send the cookie, but cannot read it to put it in the form.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request, Response
from starlette.requests import HTTPConnection

from postmortem.api.services import Services
from postmortem.config import reveal
from postmortem.review import signed_links
from postmortem.review.visibility import Reader
from postmortem.store.tokens import Role, TokenInfo
from postmortem.web import sso_session

SESSION_COOKIE = "pm_session"
CSRF_COOKIE = "pm_csrf"
LANG_COOKIE = "lang"
LINK_SECRET_NAME = signed_links.STORED_SECRET


class PageError(Exception):
    """A refusal shown as a page (not JSON): its status, its words, whether signing in helps, and
    where a sign-in from that page goes (None: back to the page asked for); `failed` shows the words
    on the sign-in page as a failure (a sign-in that went wrong), not as a plain notice.

    `message` is a key of i18n.WORDS (the page's own words, shown in the page's language, `args`
    filled in) or, for a refusal passed on from the API or the workflow, their own text as is."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        sign_in: bool = False,
        args: dict[str, str] | None = None,
        next: str | None = None,
        failed: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.sign_in = sign_in
        self.fill = args or {}
        self.next = next
        self.failed = failed


@dataclass(frozen=True)
class Caller:
    token: TokenInfo
    link: str | None = None  # the signed link's token, carried on by the page's forms

    @property
    def reader(self) -> Reader:
        return Reader(name=self.token.name, team=self.token.team, admin=self.token.role == Role.ADMIN)


def is_https(request: Request, services: Services) -> bool:
    """HTTPS as the browser sees it: behind a proxy (X-Forwarded-Proto) or a public URL in https."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    public = services.settings.server.public_url or ""
    return request.url.scheme == "https" or forwarded == "https" or public.startswith("https://")


def set_cookie(
    response: Response,
    request: Request,
    services: Services,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=is_https(request, services), path=path
    )


async def link_secret(services: Services) -> str:
    """The configured secret, else the one the store generated and keeps (the same on every replica)."""
    configured = reveal(services.settings.web.link_secret)
    if configured:
        return configured
    return await services.store.secrets.get_or_create(LINK_SECRET_NAME, datetime.now(UTC))


async def person_token(services: Services, person: str, now: datetime) -> TokenInfo:
    """The rights a signed link gives `person`: their strongest active API token's role and team, or
    a viewer's (someone known from the teams file only)."""
    mine = [
        token
        for token in await services.store.tokens.list()
        if token.revoked_at is None and token.name.casefold() == person.casefold()
    ]
    best = max(mine, key=lambda token: token.role.rank, default=None)
    return TokenInfo(
        id="signed-link",
        name=person,
        role=best.role if best else Role.VIEWER,
        team=best.team if best else None,
        created_at=now,
    )


async def sso_token(services: Services, signed_in: sso_session.SsoSession, now: datetime) -> TokenInfo:
    """The rights of a person signed in through the identity provider: the stronger of what their
    groups gave and what their own API token has (read now, so a revoked token stops counting), and
    the groups' team, else the token's."""
    own = await person_token(services, signed_in.email, now)
    role = max((signed_in.role or Role.VIEWER, own.role), key=lambda role: role.rank)
    return TokenInfo(id="sso", name=signed_in.email, role=role, team=signed_in.team or own.team, created_at=now)


async def caller(
    request: HTTPConnection, services: Services, postmortem_id: str | None = None, link: str | None = None
) -> Caller | None:
    """The signed link's person (on its own report) or the signed-in token; None when neither."""
    now = datetime.now(UTC)
    if link and postmortem_id is not None:
        try:
            person = signed_links.verify(await link_secret(services), link, postmortem_id, now)
        except signed_links.LinkRefused as refused:
            if refused.reason == signed_links.Refusal.EXPIRED:
                raise PageError(401, "err_link_expired", sign_in=True) from refused
            key = "err_link_other" if refused.reason == signed_links.Refusal.OTHER_REPORT else "err_link_changed"
            raise PageError(403, key) from refused
        return Caller(token=await person_token(services, person, now), link=link)
    session = request.cookies.get(SESSION_COOKIE)
    if session and session.startswith(sso_session.SSO_PREFIX):
        signed_in = sso_session.open_session(await link_secret(services), session, now)
        return Caller(token=await sso_token(services, signed_in, now)) if signed_in else None
    if session:
        token = await services.store.tokens.authenticate(session)
        if token is not None:
            return Caller(token=token)
    return None


def csrf_token(request: Request) -> str:
    """The browser's CSRF token (made on its first page; `ensure_csrf` sets the cookie)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    token: str = getattr(request.state, "csrf", None) or secrets.token_urlsafe(24)
    request.state.csrf = token
    return token


def ensure_csrf(request: Request, response: Response, services: Services) -> None:
    token = csrf_token(request)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_https(request, services), path="/"
        )


def check_csrf(request: Request, sent: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise PageError(403, "err_csrf")
