"""Reading a source's loosely-typed JSON without trusting its shape: webhook deliveries and REST answers.

Absent or wrongly-typed optional fields read as None or empty; a required field that is missing, or
a time that is there but unreadable, raises MalformedPayload naming the field (the webhooks answer
it as 422, so the sender learns what to fix).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class MalformedPayload(ValueError):
    """A payload we cannot read; the message names the field and what is wrong with it."""


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return None


def require_text(data: dict[str, Any], key: str, where: str) -> str:
    value = text(data.get(key))
    if not value:
        raise MalformedPayload(f"{where}.{key} is missing or not a string")
    return value


def iso_datetime(value: Any, where: str) -> datetime | None:
    """ISO 8601 with offset or Z; naive values are read as UTC."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise MalformedPayload(f"{where} must be an ISO 8601 timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedPayload(f"{where} is not an ISO 8601 timestamp: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def epoch_datetime(value: Any, where: str, *, unit: str) -> datetime | None:
    """Epoch numbers in 'ms' or 'ns' (Opsgenie mixes both in one alert)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MalformedPayload(f"{where} must be an epoch number, got {value!r}")
    try:
        number = int(value)
    except ValueError as exc:
        raise MalformedPayload(f"{where} must be an epoch number, got {value!r}") from exc
    divisor = {"ms": 1_000, "ns": 1_000_000_000}[unit]
    seconds, remainder = divmod(number, divisor)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedPayload(f"{where} is out of range: {value!r}") from exc
    microseconds = remainder * 1_000_000 // divisor
    return moment.replace(microsecond=microseconds)
