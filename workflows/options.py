"""How long the workflows' steps may take and how they are retried (one place, so they agree)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

# Our own steps (the store, the teams file): retried until they succeed.
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# Sources that are down are retried with backoff for a day; the draft does not wait that long.
GATHER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
# Deliveries (SMTP relay, calendar, Slack) are retried for up to a day, then they are a problem.
DELIVERY_OPTIONS = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=1),
    schedule_to_close_timeout=timedelta(days=1),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10)),
)
# The cancellation of a deleted report's meeting: its deletion waits for this, so it is short.
CANCEL_DELIVERY_OPTIONS = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(seconds=20),
    schedule_to_close_timeout=timedelta(seconds=40),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=10)),
)
TICKETS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=10))
QUICK = timedelta(seconds=30)
LATEST_RESCHEDULE = timedelta(days=90)
# The model step: each section is one request (the client retries a busy model itself, honouring
# Retry-After); Temporal retries only what went wrong on our side, a few times.
NARRATIVE_OPTIONS = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=20),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=3),
)
