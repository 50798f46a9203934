"""The two cookies of single sign-on, each a signed JSON value (HMAC-SHA256 under a key derived
from the pages' link secret, the same on every replica, so no session table is needed):

- the sign-in cookie of a person signed in through the identity provider (`pm_session`, as a token's,
  but `sso.<payload>.<mac>`): their email, the role and team their groups gave, and its expiry;
- the flow cookie (`pm_oidc`, path `/signin/oidc`, ten minutes) that carries one sign-in's state,
  nonce, PKCE verifier and where to go after, from the authorization request to its callback.

The key of each is its own (a value of one never passes for the other, nor for a signed link).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from postmortem.store.tokens import Role

SSO_PREFIX = "sso."
FLOW_COOKIE = "pm_oidc"
FLOW_PATH = "/signin/oidc"
FLOW_SECONDS = 600


@dataclass(frozen=True)
class SsoSession:
    """Who signed in through the provider, and what their groups gave them (None: nothing)."""

    email: str
    role: Role | None
    team: str | None
    expires: int  # POSIX seconds


@dataclass(frozen=True)
class Flow:
    """One authorization request's secrets, until its callback."""

    state: str
    nonce: str
    verifier: str
    next: str
    expires: int


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), f"postmortem sso {purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _seal(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    mac = _b64(hmac.new(_key(secret, purpose), body.encode("ascii"), hashlib.sha256).digest())
    return f"{body}.{mac}"


def _open(secret: str, purpose: str, value: str, now: datetime) -> dict[str, Any] | None:
    """The payload if the MAC is ours and it has not expired; None otherwise."""
    body, _, mac = value.partition(".")
    if not body or not mac:
        return None
    expected = _b64(hmac.new(_key(secret, purpose), body.encode("ascii", "replace"), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), mac.encode("ascii", "replace")):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("expires"), int):
        return None
    return payload if payload["expires"] > now.timestamp() else None


def seal_session(secret: str, session: SsoSession) -> str:
    return SSO_PREFIX + _seal(secret, "session", asdict(session))


def open_session(secret: str, value: str, now: datetime) -> SsoSession | None:
    if not value.startswith(SSO_PREFIX):
        return None
    payload = _open(secret, "session", value.removeprefix(SSO_PREFIX), now)
    if payload is None:
        return None
    try:
        role = Role(payload["role"]) if payload.get("role") else None
        return SsoSession(email=str(payload["email"]), role=role, team=payload.get("team"), expires=payload["expires"])
    except (KeyError, ValueError):
        return None


def seal_flow(secret: str, flow: Flow) -> str:
    return _seal(secret, "flow", asdict(flow))


def open_flow(secret: str, value: str, now: datetime) -> Flow | None:
    payload = _open(secret, "flow", value, now)
    if payload is None:
        return None
    try:
        return Flow(**payload)
    except TypeError:
        return None
