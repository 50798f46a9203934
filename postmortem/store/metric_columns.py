"""What `/api/metrics` counts, kept as plain columns beside the JSON documents it comes from.

Reading a value out of a JSON document costs a parse per row: with 100,000 reports that was seconds
per request (`bench/scale.py`). So the store writes these columns in the same statement as the
document they are taken from (a report's create, edit and `set_metrics`, a review's save, a follow-up
check: the latest one's verdict), and migration 0021 fills them for the rows stored before it. Each
function takes the document as it is stored (JSON-shaped), so the migration and the store agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from postmortem.models import Status

__all__ = ["from_follow_up", "from_metrics", "from_review"]


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def from_metrics(metrics: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    """The key metrics' columns; `month` is the incident's start month (UTC), else the report's."""
    started = _instant(metrics.get("started_at"))
    return {
        "started_at": started,
        "closed_at": _instant(metrics.get("closed_at")),
        "month": (started or created_at).astimezone(UTC).strftime("%Y-%m"),
        "time_to_detect_seconds": _number(metrics.get("time_to_detect_seconds")),
        "time_to_resolve_seconds": _number(metrics.get("time_to_resolve_seconds")),
    }


def from_review(review: dict[str, Any] | None) -> dict[str, Any]:
    """When the report was first published (its review's history is in order); None if never."""
    history = (review or {}).get("history")
    first = next(
        (
            step.get("at")
            for step in (history if isinstance(history, list) else [])
            if isinstance(step, dict) and step.get("to_status") == Status.PUBLISHED.value
        ),
        None,
    )
    return {"published_at": _instant(first)}


def from_follow_up(data: dict[str, Any]) -> dict[str, Any]:
    """The report's latest check's verdict as a number: None when not judged, 1 when the incident came
    back, else 0."""
    verdict = data.get("verdict")
    if not verdict:
        return {"recurred": None}
    worked = verdict.get("worked", True) if isinstance(verdict, dict) else True
    return {"recurred": 0 if worked else 1}
