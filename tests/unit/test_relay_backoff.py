"""The relay's backoff while Temporal is unavailable: exponential from the initial delay, capped, forever."""

from __future__ import annotations

from postmortem.app.relay import retry_delay
from postmortem.config import InboxSettings


def test_the_delay_doubles_per_attempt_up_to_the_maximum() -> None:
    settings = InboxSettings()
    assert [retry_delay(attempt, settings) for attempt in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert retry_delay(10_000, settings) == 30  # retried forever, never overflowing
    assert retry_delay(0, settings) == 0.5


def test_the_delays_are_settings() -> None:
    settings = InboxSettings(retry_initial_seconds=0.1, retry_max_seconds=0.5)
    assert [retry_delay(attempt, settings) for attempt in range(1, 5)] == [0.1, 0.2, 0.4, 0.5]
