"""PagerDuty's webhook signature, exactly as documented.

`X-PagerDuty-Signature: v1=<hex>,v1=<hex>` — HMAC-SHA256 of the raw body under the subscription
secret; several values during a secret rotation; any one match is enough; unknown versions are
ignored; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from postmortem.webhooks.errors import WebhookRejected

HEADER = "X-PagerDuty-Signature"


def sign(body: bytes, secret: str) -> str:
    """The header value PagerDuty would send for this body (used by tests and benchmarks)."""
    return "v1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> None:
    if not secrets:
        # 5xx, so PagerDuty keeps retrying until the operator configures the secret: nothing lost.
        raise WebhookRejected(503, "PagerDuty webhooks are not configured: set POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS")
    if not body:
        raise WebhookRejected(400, "empty request body")
    if header is None or not header.strip():
        raise WebhookRejected(400, f"missing {HEADER} header")
    candidates = [
        part.strip()[3:].lower().encode("utf-8", "replace")
        for part in header.split(",")
        if part.strip().startswith("v1=")
    ]
    if not candidates or not all(candidates):
        raise WebhookRejected(400, f"malformed {HEADER} header: expected one or more 'v1=<hex>' values")
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode("ascii")
        for candidate in candidates:
            # No early exit: the time taken does not depend on which value matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookRejected(401, f"no valid signature in {HEADER} for this body")
