"""Jira Service Management Operations' Webhook integration: the same alert-action JSON as Opsgenie's
(Atlassian, "Alert action data"), so `Close` starts the post-mortem and every other action is
acknowledged.

JSM does not sign deliveries either. The integration's custom headers carry a shared token, as
`Authorization: Bearer <token>` or `X-Postmortem-Token: <token>`; never in the URL, where proxies
and JSM's own integration log would keep it. It is compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any

from postmortem.models import IncidentEvent, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.opsgenie import TOKEN_HEADER, parse_opsgenie

SETTING = "POSTMORTEM_JSM_WEBHOOK_TOKEN"


def presented_token(authorization: str | None, header_token: str | None) -> str | None:
    """The token the sender presented: `X-Postmortem-Token`, else the bearer credentials."""
    if header_token:
        return header_token
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


def verify_jsm_token(authorization: str | None, header_token: str | None, expected: str | None) -> None:
    """401 without the right token; 503 while none is configured (the sender keeps the delivery)."""
    if not expected:
        raise WebhookRejected(503, f"JSM webhooks are not configured: set {SETTING}")
    presented = presented_token(authorization, header_token)
    if presented is None:
        raise WebhookRejected(401, f"missing token: send `Authorization: Bearer <token>` or the {TOKEN_HEADER} header")
    if not hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8")):
        raise WebhookRejected(401, "invalid JSM webhook token")


def parse_jsm(data: dict[str, Any]) -> IncidentEvent | Ignored:
    """Opsgenie's alert-action JSON, sent by JSM Operations."""
    return parse_opsgenie(data, Source.JSM)
