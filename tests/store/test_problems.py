"""The problems of a report on SQLite and PostgreSQL: recorded once per problem, retried, deleted with it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from postmortem.review.problems import ProblemState, problem_key
from postmortem.store.errors import NotFound
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SLACK_REFUSED = "Slack refused the call: channel_not_found"


async def _report(store: Store, incident_id: str) -> str:
    stored, _ = await store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(incident_id).incident, created_at=NOW)
    )
    return stored.id


async def _record(store: Store, pm_id: str, *, attempt: int = 1, message: str = SLACK_REFUSED, **where: object):
    step, target = str(where.get("step", "notify")), str(where.get("target", "#sre-payments"))
    return await store.problems.record(
        pm_id,
        problem_id=problem_key(step, target),
        workflow_id=f"postmortem-{pm_id}",
        step=step,
        target=target,
        message=message,
        attempt=attempt,
        now=where.get("now", NOW),  # type: ignore[arg-type]
    )


async def test_recording_the_same_failure_twice_counts_once(any_store: Store) -> None:
    pm_id = await _report(any_store, "PPROB1")
    problem, first = await _record(any_store, pm_id)
    again, first_again = await _record(any_store, pm_id, now=NOW + timedelta(minutes=5))

    assert first and not first_again
    assert problem.id == "notify:#sre-payments" and problem.step == "notify" and problem.target == "#sre-payments"
    assert problem.message == SLACK_REFUSED and problem.attempts == 1 and problem.state == ProblemState.OPEN
    assert problem.first_seen == NOW and problem.first_seen.utcoffset() == timedelta(0)
    assert again == problem  # a retried recording changes nothing, not even last_seen
    assert await any_store.problems.list(pm_id) == [problem]


async def test_a_failed_retry_opens_the_problem_again_with_the_new_words(any_store: Store) -> None:
    pm_id = await _report(any_store, "PPROB2")
    await _record(any_store, pm_id)
    retrying = await any_store.problems.set_state(pm_id, "notify:#sre-payments", ProblemState.RETRYING, NOW)
    assert retrying.state == ProblemState.RETRYING

    later = NOW + timedelta(hours=2)
    problem, first = await _record(
        any_store, pm_id, attempt=2, message="Slack refused the call: not_in_channel", now=later
    )
    assert not first
    assert problem.state == ProblemState.OPEN and problem.attempts == 2
    assert problem.message == "Slack refused the call: not_in_channel"
    assert problem.first_seen == NOW and problem.last_seen == later

    stale, _ = await _record(any_store, pm_id, attempt=1, now=later + timedelta(hours=1))  # a late first attempt
    assert stale == problem  # attempts = max(stored, attempt): it counts nothing and says nothing new


async def test_states_move_and_unknown_problems_are_not_found(any_store: Store) -> None:
    pm_id = await _report(any_store, "PPROB3")
    await _record(any_store, pm_id, step="invite", target="smtp")
    await any_store.problems.set_state(pm_id, "invite:smtp", ProblemState.RETRYING, NOW)
    resolved = await any_store.problems.set_state(pm_id, "invite:smtp", ProblemState.RESOLVED, NOW)
    assert resolved.state == ProblemState.RESOLVED
    assert await any_store.problems.get(pm_id, "invite:smtp") == resolved

    with pytest.raises(NotFound):
        await any_store.problems.get(pm_id, "invite:caldav")
    with pytest.raises(NotFound):
        await any_store.problems.set_state(pm_id, "invite:caldav", ProblemState.RETRYING, NOW)
    with pytest.raises(NotFound):
        await any_store.problems.get("pagerduty-nope", "invite:smtp")


async def test_a_report_lists_its_own_problems_oldest_first(any_store: Store) -> None:
    pm_id, other = await _report(any_store, "PPROB4"), await _report(any_store, "PPROB5")
    await _record(any_store, pm_id, step="tickets", target="jira", now=NOW + timedelta(minutes=2))
    await _record(any_store, pm_id, step="gather", target="pagerduty", now=NOW)
    await _record(any_store, pm_id, step="invite", target="caldav", now=NOW + timedelta(minutes=1))
    await _record(any_store, other, step="gather", target="pagerduty", now=NOW)  # the same id on another report

    assert [p.id for p in await any_store.problems.list(pm_id)] == ["gather:pagerduty", "invite:caldav", "tickets:jira"]
    assert [p.id for p in await any_store.problems.list(other)] == ["gather:pagerduty"]
    assert await any_store.problems.list("pagerduty-nope") == []


async def test_concurrent_recordings_have_one_first(any_store: Store) -> None:
    pm_id = await _report(any_store, "PPROB6")
    results = await asyncio.gather(*(_record(any_store, pm_id) for _ in range(6)))
    assert sum(first for _, first in results) == 1
    assert len({problem.model_dump_json() for problem, _ in results}) == 1


async def test_no_problem_is_kept_for_a_report_that_is_not_there(any_store: Store) -> None:
    with pytest.raises(NotFound):
        await _record(any_store, "pagerduty-nope")


async def test_problems_go_with_their_report(any_store: Store) -> None:
    pm_id = await _report(any_store, "PPROB7")
    await _record(any_store, pm_id)
    await any_store.postmortems.delete(pm_id)
    assert await any_store.problems.list(pm_id) == []

    pm_id = await _report(any_store, "PPROB7")  # the incident is free again: a new report of the same id
    assert await any_store.problems.list(pm_id) == []
    await _record(any_store, pm_id)
    await any_store.review.delete_for(pm_id)  # what the API's delete runs after the report's row is gone
    assert await any_store.problems.list(pm_id) == []


async def test_a_delivery_attempt_is_noted_once_and_an_earlier_one_is_told(any_store: Store) -> None:
    pm_id = await _report(any_store, "PATTEMPT")
    key = f"{pm_id}:invite:caldav:0:REQUEST"
    assert await any_store.meetings.begin_delivery(key, pm_id, "caldav", NOW) is None
    later = NOW + timedelta(minutes=3)
    assert await any_store.meetings.begin_delivery(key, pm_id, "caldav", later) == NOW, "the first attempt's start"
    assert not await any_store.meetings.delivered(key), "an attempt is not a delivery"
    await any_store.meetings.record_delivery(key, pm_id, "caldav", "calendar event", later)
    assert await any_store.meetings.delivered(key)
