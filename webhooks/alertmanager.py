"""Prometheus Alertmanager webhooks (format version 4): alerts are stored as they fire and resolve.

Alertmanager does not sign; when POSTMORTEM_ALERTMANAGER_WEBHOOK_TOKEN is set the receiver must send
it as a bearer token (`http_config.authorization` in alertmanager.yml). Firing alerts carry
`endsAt: 0001-01-01T00:00:00Z`; older senders omit `fingerprint`.
"""

from __future__ import annotations

import hmac
from typing import Any

from postmortem.evidence.timeline import parse_time
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.payload import obj, text

ZERO_TIME_PREFIX = "0001-01-01"


def verify_bearer(header: str | None, expected: str | None) -> None:
    if not expected:
        return
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise WebhookRejected(401, "missing bearer token: set http_config.authorization on the Alertmanager receiver")
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise WebhookRejected(401, "invalid Alertmanager bearer token")


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's own fingerprint (prometheus/common LabelSet.Fingerprint: FNV-1a 64 over the
    sorted `name 0xff value 0xff` bytes), for senders too old to send it."""
    digest = 0xCBF29CE484222325
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def parse_alertmanager(data: dict[str, Any]) -> list[dict[str, Any]]:
    version = text(data.get("version"))
    if version != "4":
        raise WebhookRejected(422, f'version must be "4" (Alertmanager webhook format), got {version!r}')
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise WebhookRejected(422, "alerts must be a list")
    parsed = []
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            raise WebhookRejected(422, f"{where} must be an object")
        labels = {str(k): str(v) for k, v in obj(alert.get("labels")).items()}
        if not labels:
            raise WebhookRejected(422, f"{where}.labels is missing or empty")
        starts_at = parse_time(alert.get("startsAt"))
        if starts_at is None:
            raise WebhookRejected(422, f"{where}.startsAt is missing or not an RFC 3339 timestamp")
        raw_end = text(alert.get("endsAt")) or ""
        ends_at = None if raw_end.startswith(ZERO_TIME_PREFIX) or not raw_end else parse_time(raw_end)
        if raw_end and not raw_end.startswith(ZERO_TIME_PREFIX) and ends_at is None:
            raise WebhookRejected(422, f"{where}.endsAt is not an RFC 3339 timestamp")
        status = text(alert.get("status")) or "firing"
        if status not in ("firing", "resolved"):
            raise WebhookRejected(422, f"{where}.status must be 'firing' or 'resolved', got {status!r}")
        parsed.append(
            {
                "fingerprint": text(alert.get("fingerprint")) or fingerprint(labels),
                "status": status,
                "labels": labels,
                "annotations": {str(k): str(v) for k, v in obj(alert.get("annotations")).items()},
                "starts_at": starts_at,
                "ends_at": ends_at if status == "resolved" else None,
                "generator_url": text(alert.get("generatorURL")),
            }
        )
    return parsed
