"""OpenID Connect, the relying party's half: the provider's discovery document and keys, the
authorization request (code flow, PKCE S256, state, nonce) and the code exchange, and the ID token
checked as OpenID Connect Core 3.1.3.7 says (signature over the provider's JWKS, iss, aud, azp,
exp, iat, nonce).

Authlib builds the protocol's messages; joserfc verifies the token. The discovery document is kept
for an hour and the keys until a token names a key id they lack (the provider rotated): then they
are read again, once. Caches are per process and hold only public data, so replicas need nothing
shared. Every failure is an `OidcError` with the HTTP status a page should answer and words a person
can act on.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

DISCOVERY_TTL_SECONDS = 3600.0
LEEWAY_SECONDS = 60  # clock skew allowed between us and the provider on exp / iat
# Asymmetric algorithms only: "none" and HS256 (keyed with the client secret) are never accepted.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OidcError(Exception):
    """Sign-in refused or impossible: the page's status and its words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Provider:
    """What the discovery document says, as far as the code flow needs it."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]
    end_session_endpoint: str | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and the secrets the callback must be checked against."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass
class _Cache:
    providers: dict[str, tuple[float, Provider]] = field(default_factory=dict)
    keys: dict[str, KeySet] = field(default_factory=dict)


_cache = _Cache()


def forget_cached() -> None:
    """Drop the discovery documents and keys read so far (a test starts from a cold process)."""
    _cache.providers.clear()
    _cache.keys.clear()


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


async def _get_json(http: httpx.AsyncClient, url: str, what: str) -> dict[str, Any]:
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OidcError(
            503, f"the identity provider did not answer ({what}: {type(exc).__name__}); try again shortly"
        ) from exc
    if response.status_code != 200:
        raise OidcError(502, f"the identity provider answered {response.status_code} to the {what} request")
    try:
        body = response.json()
    except ValueError as exc:
        raise OidcError(502, f"the identity provider's {what} is not JSON") from exc
    if not isinstance(body, dict):
        raise OidcError(502, f"the identity provider's {what} is not a JSON object")
    return body


async def provider(http: httpx.AsyncClient, issuer: str) -> Provider:
    """The issuer's discovery document (OpenID Connect Discovery 1.0), read at most once an hour."""
    cached = _cache.providers.get(issuer)
    if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
        return cached[1]
    doc = await _get_json(http, discovery_url(issuer), "discovery document")
    if str(doc.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise OidcError(502, f"the discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}")
    missing = [name for name in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(name)]
    if missing:
        raise OidcError(502, f"the discovery document lacks {', '.join(missing)}")
    offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    found = Provider(
        issuer=str(doc["issuer"]),
        authorization_endpoint=str(doc["authorization_endpoint"]),
        token_endpoint=str(doc["token_endpoint"]),
        jwks_uri=str(doc["jwks_uri"]),
        algorithms=tuple(alg for alg in SIGNING_ALGORITHMS if alg in offered) or ("RS256",),
        token_auth_methods=tuple(doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]),
        end_session_endpoint=doc.get("end_session_endpoint"),
    )
    _cache.providers[issuer] = (time.monotonic(), found)
    return found


def authorization_request(
    found: Provider, *, client_id: str, redirect_uri: str, scopes: list[str]
) -> AuthorizationRequest:
    """A fresh state, nonce and PKCE verifier, and the provider's URL that carries them."""
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    url = prepare_grant_uri(
        found.authorization_endpoint,
        client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=" ".join(scopes),
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)


async def exchange_code(
    http: httpx.AsyncClient,
    found: Provider,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    client_id: str,
    client_secret: str | None,
) -> str:
    """The ID token the token endpoint gives for `code` (client_secret_basic, else _post, else public)."""
    body = prepare_token_request(
        "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    auth: httpx.BasicAuth | None = None
    if client_secret and "client_secret_basic" in found.token_auth_methods:
        auth = httpx.BasicAuth(_form_encode(client_id), _form_encode(client_secret))
    elif client_secret:
        body += "&" + str(httpx.QueryParams({"client_id": client_id, "client_secret": client_secret}))
    else:
        body += "&" + str(httpx.QueryParams({"client_id": client_id}))
    try:
        response = await http.post(
            found.token_endpoint, content=body, headers=headers, auth=auth or httpx.USE_CLIENT_DEFAULT
        )
    except httpx.HTTPError as exc:
        raise OidcError(
            503, f"the identity provider did not answer (token request: {type(exc).__name__}); try again shortly"
        ) from exc
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200:
        error = answer.get("error") if isinstance(answer, dict) else None
        if response.status_code in (400, 401) and error:
            detail = answer.get("error_description") or error
            raise OidcError(400, f"the identity provider refused the sign-in code ({detail}): sign in again")
        raise OidcError(502, f"the identity provider answered {response.status_code} to the token request")
    id_token = answer.get("id_token") if isinstance(answer, dict) else None
    if not isinstance(id_token, str) or not id_token:
        raise OidcError(502, "the identity provider's token answer has no id_token (is the openid scope allowed?)")
    return id_token


def _form_encode(value: str) -> str:
    """RFC 6749 2.3.1: the client id and secret are form-encoded before they go into Basic auth."""
    return str(httpx.QueryParams({"v": value}))[2:]


async def _keys(http: httpx.AsyncClient, found: Provider, *, refresh: bool) -> KeySet:
    cached = _cache.keys.get(found.jwks_uri)
    if cached is not None and not refresh:
        return cached
    document = await _get_json(http, found.jwks_uri, "JWKS")
    try:
        keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise OidcError(502, f"the identity provider's JWKS could not be read ({exc})") from exc
    _cache.keys[found.jwks_uri] = keys
    return keys


def _has_key(keys: KeySet, kid: str | None) -> bool:
    return kid is None or any(key.kid == kid for key in keys.keys)


async def verify_id_token(
    http: httpx.AsyncClient, found: Provider, id_token: str, *, client_id: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims once its signature (a key of the provider's JWKS, an asymmetric
    algorithm it offers) and its iss, aud, azp, exp, iat and nonce are right; else OidcError 401."""
    try:
        header = jws.extract_compact(id_token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError) as exc:
        raise OidcError(401, "the identity provider's ID token is not a signed JWT") from exc
    kid = header.get("kid")
    keys = await _keys(http, found, refresh=False)
    if not _has_key(keys, kid):
        keys = await _keys(http, found, refresh=True)  # the provider rotated its keys
        if not _has_key(keys, kid):
            raise OidcError(401, f"the ID token is signed with key {kid!r}, which the provider's JWKS does not hold")
    try:
        token = jwt.decode(id_token, keys, algorithms=list(found.algorithms))
    except JoseError as exc:
        raise OidcError(401, f"the ID token's signature is not valid ({exc.error})") from exc
    claims = dict(token.claims)
    registry = JWTClaimsRegistry(
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": found.issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise OidcError(401, _claim_words(exc)) from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OidcError(401, "the ID token is for several audiences and its azp is not this service")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"].encode(), nonce.encode()):
        raise OidcError(401, "the ID token's nonce is not the one this sign-in sent (a replayed token?): sign in again")
    return claims


def _claim_words(exc: JoseError) -> str:
    name = getattr(exc, "claim", None) or ""
    kind = type(exc).__name__
    if kind == "ExpiredTokenError":
        return "the ID token has expired (is this machine's clock right?): sign in again"
    if kind == "MissingClaimError":
        return f"the ID token lacks a required claim ({exc.description or exc.error})"
    if name == "iss" or "iss" in str(exc.description):
        return "the ID token was issued by another issuer than the one configured"
    if name == "aud" or "aud" in str(exc.description):
        return "the ID token is for another client (its aud is not this service's client id)"
    return f"the ID token's claims are not valid ({exc.description or exc.error})"
