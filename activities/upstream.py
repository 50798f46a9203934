"""The one place where an outside system's error becomes a Temporal activity error."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from postmortem.integrations.http_errors import UpstreamError


def activity_error(exc: UpstreamError, type: str | None = None) -> ApplicationError:
    """Permanent (401, 404, bad config) is not retried; transient waits the upstream's Retry-After."""
    return ApplicationError(
        str(exc),
        type=type,
        non_retryable=exc.permanent,
        next_retry_delay=timedelta(seconds=exc.retry_after) if exc.retry_after else None,
    )
