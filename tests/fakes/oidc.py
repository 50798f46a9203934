"""A loopback OpenID Connect provider that speaks the protocol as a real one does (OpenID Connect
Core 1.0 and Discovery 1.0, RFC 6749's code grant, RFC 7636's PKCE, RFC 7517's JWKS):

- `GET /.well-known/openid-configuration`: the discovery document, `issuer` its own base URL;
- `GET /authorize`: checks the client, the registered redirect URI, `response_type=code`, the
  `openid` scope and an S256 code challenge, then (a session already open: `auto_approve`) redirects
  back with `code` and `state`, or shows a sign-in page whose button (`POST /authorize`) does;
  `deny` answers `error=access_denied` instead;
- `POST /token`: the code once, for the same client (HTTP Basic, or client_secret_post) and
  redirect URI, with the verifier whose S256 is the challenge; answers the tokens with an RS256
  ID token (`iss`, `sub`, `aud`, `exp`, `iat`, `nonce`, `email`, `email_verified`, `groups`)
  signed by the current key, its `kid` in the header; errors as RFC 6749 5.2 (`invalid_grant` …);
- `GET /jwks`: the published keys (public halves).

Test knobs: `user` (who is signed in at the provider), `claims` (overrides of the ID token's claims,
None removes one), `rotate()` (a new signing key, the old one unpublished), `sign_with_unpublished`
(a key the JWKS never holds), and `Switchable`'s outages.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app

CLIENT_ID = "postmortem-web"
CLIENT_SECRET = "oidc-client-secret-for-tests"


def new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "RS256"})


@dataclass
class User:
    sub: str = "248289761001"
    email: str = "owner@example.com"
    email_verified: bool = True
    groups: list[str] = field(default_factory=list)
    name: str = "Olivia Owner"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    scope: str
    user: User


@dataclass
class FakeOidc(Switchable):
    base_url: str = ""  # set once served: the issuer
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    redirect_uris: list[str] = field(default_factory=list)
    user: User = field(default_factory=User)
    auto_approve: bool = True
    deny: bool = False
    claims: dict[str, Any] = field(default_factory=dict)  # overrides; None removes the claim
    signing_key: RSAKey = field(default_factory=new_key)
    published: list[RSAKey] = field(default_factory=list)  # empty: just the signing key
    sign_with_unpublished: bool = False
    grants: dict[str, Grant] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[Any] = field(default_factory=list)
    epoch: int = 0
    outage: Outage | None = None
    refused: int = 0

    def rotate(self) -> None:
        """A new signing key; the JWKS now holds only it (the old key retired)."""
        self.signing_key = new_key()
        self.published = [self.signing_key]

    def jwks(self) -> dict[str, Any]:
        keys = self.published or [self.signing_key]
        return {"keys": [key.as_dict(private=False) for key in keys]}

    def fetched(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.base_url,
            "sub": grant.user.sub,
            "aud": grant.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "nonce": grant.nonce,
            "email": grant.user.email,
            "email_verified": grant.user.email_verified,
            "name": grant.user.name,
            "groups": grant.user.groups,
        }
        for name, value in self.claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        if grant.nonce is None:
            claims.pop("nonce", None)
        key = new_key() if self.sign_with_unpublished else self.signing_key
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded body (no python-multipart here): the last value of each field."""
    return {name: values[-1] for name, values in parse_qs((await request.body()).decode()).items()}


def _redirect(uri: str, **params: str) -> Response:
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}", status_code=302)


def _failure(kind: Any) -> Response:
    return JSONResponse(
        {"error": "server_error", "error_description": "the provider is failing"}, status_code=int(kind)
    )


def _token_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def oidc_app(state: FakeOidc) -> Any:
    app = fake_app(state, failure=_failure)

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        base = state.base_url
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "userinfo_endpoint": f"{base}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified", "groups"],
        }

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return state.jwks()

    def _checked(params: dict[str, str]) -> Response | None:
        """RFC 6749 4.1.2.1: a bad client or redirect URI is shown to the user, never redirected to."""
        if params.get("client_id") != state.client_id:
            return HTMLResponse("unknown client_id", status_code=400)
        if params.get("redirect_uri") not in state.redirect_uris:
            return HTMLResponse("redirect_uri is not registered for this client", status_code=400)
        uri = params["redirect_uri"]
        problem = None
        if params.get("response_type") != "code":
            problem = ("unsupported_response_type", "only the code flow")
        elif "openid" not in params.get("scope", "").split():
            problem = ("invalid_scope", "the openid scope is required")
        elif params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            problem = ("invalid_request", "PKCE with S256 is required")
        if problem:
            return _redirect(uri, error=problem[0], error_description=problem[1], state=params.get("state", ""))
        return None

    def _approve(params: dict[str, str]) -> Response:
        uri = params["redirect_uri"]
        if state.deny:
            return _redirect(uri, error="access_denied", error_description="the user said no", state=params["state"])
        code = secrets.token_urlsafe(24)
        state.grants[code] = Grant(
            client_id=params["client_id"],
            redirect_uri=uri,
            nonce=params.get("nonce"),
            challenge=params["code_challenge"],
            scope=params.get("scope", ""),
            user=state.user,
        )
        return _redirect(uri, code=code, state=params.get("state", ""))

    @app.get("/authorize")
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        refused = _checked(params)
        if refused is not None:
            return refused
        if state.auto_approve:
            return _approve(params)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in params.items()
        )
        return HTMLResponse(
            "<!doctype html><html lang=en><title>Fake IdP</title><h1>Fake identity provider</h1>"
            f'<form method="post" action="/authorize">{hidden}'
            f"<button type=submit>Continue as {html.escape(state.user.email)}</button></form></html>"
        )

    @app.post("/authorize")
    async def authorize_form(request: Request) -> Response:
        params = await _form(request)
        return _checked(params) or _approve(params)

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = await _form(request)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        if client_id != state.client_id or secret != state.client_secret:
            return _token_error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "authorization_code":
            return _token_error("unsupported_grant_type", "only authorization_code")
        grant = state.grants.pop(form.get("code", ""), None)  # a code is good once
        if grant is None or grant.client_id != client_id:
            return _token_error("invalid_grant", "the code is unknown, used or expired")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _token_error("invalid_grant", "redirect_uri differs from the authorization request's")
        if _s256(form.get("code_verifier", "")) != grant.challenge:
            return _token_error("invalid_grant", "PKCE verification failed")
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": grant.scope,
                "id_token": state.id_token(grant),
            },
            headers={"Cache-Control": "no-store"},
        )

    return app
