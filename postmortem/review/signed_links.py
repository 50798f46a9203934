"""Signed links: a short token bound to one report and one person, with an expiry, that opens the
report page as that person without an API token (the links in invites, reminders, tickets).

Pure (no I/O): the token is `<person>.<expiry>.<report tag>.<mac>`, each part urlsafe base64, the
MAC an HMAC-SHA256 over the report's tag (a hash of its id), the person and the expiry. Refusals say
why, so the page can ask to sign in (expired) or refuse (tampered, other report).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote

MAC_BYTES = 16  # 128 bits of HMAC-SHA256: short in a URL, far beyond guessing
STORED_SECRET = "web_link_secret"  # the store's name for the key when none is configured (pages and worker alike)
TAG_BYTES = 6  # which report the token is for, so a link moved onto another report says so


class Refusal(StrEnum):
    TAMPERED = "tampered"
    EXPIRED = "expired"
    OTHER_REPORT = "other_report"


class LinkRefused(ValueError):
    """The token does not open this report; `reason` says why."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(postmortem_id: str) -> bytes:
    return hashlib.sha256(postmortem_id.encode("utf-8")).digest()[:TAG_BYTES]


def _mac(secret: str, tag: bytes, person: str, expires: int) -> bytes:
    message = b"\n".join((tag, person.encode("utf-8"), str(expires).encode("ascii")))
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:MAC_BYTES]


def sign(secret: str, postmortem_id: str, person: str, expires_at: datetime) -> str:
    """A token that opens `postmortem_id` as `person` until `expires_at` (aware)."""
    if not secret:
        raise ValueError("a signed link needs a secret")
    expires = int(expires_at.timestamp())
    tag = _tag(postmortem_id)
    mac = _mac(secret, tag, person, expires)
    return ".".join((_b64(person.encode("utf-8")), _b64(expires.to_bytes(5, "big")), _b64(tag), _b64(mac)))


def verify(secret: str, token: str, postmortem_id: str, now: datetime) -> str:
    """The person the token speaks for on `postmortem_id`; LinkRefused (tampered, other report,
    expired: checked in that order) when it does not open this report now."""
    damaged = LinkRefused(Refusal.TAMPERED, "this link is not valid: it was changed or cut short")
    parts = token.split(".")
    if len(parts) != 4:
        raise damaged
    try:
        person = _unb64(parts[0]).decode("utf-8")
        expires = int.from_bytes(_unb64(parts[1]), "big")
        tag, mac = _unb64(parts[2]), _unb64(parts[3])
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise damaged from exc
    if not hmac.compare_digest(mac, _mac(secret, tag, person, expires)):
        raise damaged
    if not hmac.compare_digest(tag, _tag(postmortem_id)):
        raise LinkRefused(Refusal.OTHER_REPORT, "this link is for another post-mortem")
    if now >= datetime.fromtimestamp(expires, UTC):
        raise LinkRefused(Refusal.EXPIRED, "this link has expired: sign in to open the post-mortem")
    return person


def expiry(now: datetime, ttl_days: int) -> datetime:
    return now + timedelta(days=ttl_days)


def page_url(public_url: str, postmortem_id: str) -> str:
    """The report page, for when no person is known (anyone with access signs in)."""
    return f"{public_url.rstrip('/')}/postmortems/{quote(postmortem_id, safe='')}"


def signed_url(public_url: str, secret: str, postmortem_id: str, person: str, expires_at: datetime) -> str:
    """`<public_url>/postmortems/<id>?t=<token>`: the report page as `person` until `expires_at`."""
    return f"{page_url(public_url, postmortem_id)}?t={sign(secret, postmortem_id, person, expires_at)}"
