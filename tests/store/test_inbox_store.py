"""The inbox on SQLite and PostgreSQL: one entry per delivery, leases, per-incident order, backoff, pruning."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from postmortem.models import IncidentEvent
from postmortem.store.errors import NotFound
from postmortem.store.inbox import InboxState, NewDelivery, Settlement, incident_delivery, stored_event
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
BODY = b'{"event": {"id": "E"}}'


def delivery(
    incident: str, event_id: str | None = None, delivery_id: str | None = None, raw: dict | None = None
) -> NewDelivery:
    return NewDelivery(
        source="pagerduty",
        event_id=event_id,
        delivery_id=delivery_id,
        incident_key=f"pagerduty:{incident}",
        delivery={"kind": "incident_event", "event": {"incident": incident}},
        incident_raw=raw,
    )


async def add(store: Store, *deliveries: NewDelivery, at: datetime = T0) -> list[int]:
    receipts = await store.inbox.add(BODY, {"x-webhook-id": "W"}, deliveries, at)
    return [receipt.entry.id for receipt in receipts]


async def test_a_delivery_is_stored_whole_and_read_back_without_its_payloads(any_store: Store) -> None:
    event = pagerduty_event("PINBOX1")
    new = NewDelivery(
        source="pagerduty",
        event_id=event.event_id,
        delivery_id="W-1",
        incident_key="pagerduty:PINBOX1",
        delivery=incident_delivery(event),
        incident_raw=event.incident.raw,
    )
    [receipt] = await any_store.inbox.add(BODY, {"x-webhook-id": "W-1"}, [new], T0)
    entry = receipt.entry
    assert not receipt.duplicate
    assert (entry.state, entry.attempts, entry.received_at, entry.next_attempt_at) == (InboxState.PENDING, 0, T0, T0)
    assert entry.received_at.utcoffset() == timedelta(0)
    # The normalised event travels without its raw payload, which stays beside it in the entry.
    assert entry.delivery["event"]["incident"]["raw"] == {}
    assert stored_event(entry.delivery) == event.model_copy(update={"incident": event.incident.summary()})
    assert await any_store.inbox.raw_of(entry.id) == event.incident.raw
    assert await any_store.inbox.body_of(entry.id) == BODY
    restored = await any_store.inbox.with_raw(event.incident.summary(), str(entry.id))
    assert restored == event.incident
    assert await any_store.inbox.with_raw(event.incident.summary(), "999999") == event.incident.summary()
    assert (await any_store.inbox.get(entry.id)).delivery_id == "W-1"
    with pytest.raises(NotFound):
        await any_store.inbox.get(entry.id + 1000)


async def test_duplicates_are_answered_with_the_first_entry(any_store: Store) -> None:
    [first] = await add(any_store, delivery("P1", event_id="E1", delivery_id="W1"))
    # A retry (same delivery id), the same event again under another delivery id, and another event
    # of the incident under the same delivery id: all the first entry.
    for again in (
        delivery("P1", event_id="E1", delivery_id="W1"),
        delivery("P1", event_id="E1", delivery_id="W2"),
        delivery("P1", event_id="E9", delivery_id="W1"),
    ):
        [receipt] = await any_store.inbox.add(BODY, {}, [again], T0)
        assert receipt.duplicate and receipt.entry.id == first
    # Not duplicates: another event of the incident, the same event id or delivery id for another
    # incident (ids are never trusted across incidents), no ids at all.
    others = await add(
        any_store,
        delivery("P1", event_id="E2"),
        delivery("P3", event_id="E1"),
        delivery("P4", event_id="E4", delivery_id="W1"),
        delivery("P1"),
        delivery("P1"),
    )
    assert len(set(others)) == 5 and first not in others
    assert (await any_store.inbox.counts())[InboxState.PENDING] == 6


async def test_concurrent_retries_of_one_delivery_store_one_entry(any_store: Store) -> None:
    receipts = await asyncio.gather(
        *(any_store.inbox.add(BODY, {}, [delivery("PRACE", event_id="E1", delivery_id="W1")], T0) for _ in range(8))
    )
    assert sum(not receipt.duplicate for [receipt] in receipts) == 1
    assert len({receipt.entry.id for [receipt] in receipts}) == 1


async def test_a_duplicate_says_what_the_relay_recorded(any_store: Store) -> None:
    [entry_id] = await add(any_store, delivery("P1", event_id="E1"))
    [claimed] = await any_store.inbox.claim("relay-a", T0, LEASE, 10)
    outcome = {"outcome": "accepted", "postmortem_id": "pagerduty-P1", "workflow_id": "postmortem-pagerduty-P1"}
    assert await any_store.inbox.settle("relay-a", [Settlement.done(claimed.id, outcome)], T0) == 1
    [receipt] = await any_store.inbox.add(BODY, {}, [delivery("P1", event_id="E1")], T0)
    assert receipt.duplicate and receipt.entry.id == entry_id
    assert receipt.entry.state == InboxState.DONE and receipt.entry.result == outcome


async def test_two_claimers_never_get_the_same_entry(any_store: Store) -> None:
    ids = await add(any_store, *(delivery(f"P{index}", event_id="E") for index in range(40)))

    async def claimer(owner: str) -> list[int]:
        got: list[int] = []
        while batch := await any_store.inbox.claim(owner, T0, LEASE, 3):
            got += [entry.id for entry in batch]
            assert all(entry.lease_owner == owner and entry.attempts == 1 for entry in batch)
        return got

    first, second, third = await asyncio.gather(claimer("a"), claimer("b"), claimer("c"))
    assert sorted(first + second + third) == sorted(ids)  # each entry exactly once
    assert not (set(first) & set(second)) and not (set(first) & set(third)) and not (set(second) & set(third))


async def test_one_incident_is_relayed_in_arrival_order(any_store: Store) -> None:
    x1, y1, x2, x3 = await add(
        any_store,
        delivery("X", event_id="1"),
        delivery("Y", event_id="1"),
        delivery("X", event_id="2"),
        delivery("X", event_id="3"),
    )
    inbox = any_store.inbox
    assert [entry.id for entry in await inbox.claim("a", T0, LEASE, 10)] == [x1, y1]  # x2 waits behind x1
    assert await inbox.claim("b", T0, LEASE, 10) == []  # x1 is leased, x2 and x3 wait
    await inbox.settle("a", [Settlement.done(x1, {"outcome": "accepted"}), Settlement.done(y1, {})], T0)
    [second] = await inbox.claim("b", T0, LEASE, 10)
    assert second.id == x2
    # Temporal away: x2 is retried later, and x3 still waits behind it.
    await inbox.settle("b", [Settlement.retry(x2, "Temporal unreachable", T0 + timedelta(seconds=2))], T0)
    assert await inbox.claim("b", T0 + timedelta(seconds=1), LEASE, 10) == []
    [again] = await inbox.claim("b", T0 + timedelta(seconds=2), LEASE, 10)
    assert (again.id, again.attempts, again.last_error) == (x2, 2, "Temporal unreachable")
    # A failed entry is settled for good: it no longer holds the incident's later deliveries back.
    await inbox.settle("b", [Settlement.failed(x2, "can never succeed")], T0)
    [third] = await inbox.claim("b", T0 + timedelta(seconds=2), LEASE, 10)
    assert third.id == x3


async def test_a_lease_runs_out_and_only_its_holder_settles(any_store: Store) -> None:
    [entry_id] = await add(any_store, delivery("P1", event_id="E1"))
    inbox = any_store.inbox
    [held] = await inbox.claim("dead-relay", T0, LEASE, 10)
    assert held.lease_expires_at == T0 + LEASE
    assert await inbox.claim("live-relay", T0 + LEASE - timedelta(seconds=1), LEASE, 10) == []
    [taken] = await inbox.claim("live-relay", T0 + LEASE, LEASE, 10)
    assert (taken.id, taken.attempts, taken.lease_owner) == (entry_id, 2, "live-relay")
    assert await inbox.settle("dead-relay", [Settlement.done(entry_id, {"outcome": "late"})], T0) == 0
    assert await inbox.settle("live-relay", [Settlement.done(entry_id, {"outcome": "accepted"})], T0) == 1
    assert (await inbox.get(entry_id)).result == {"outcome": "accepted"}


async def test_a_stopping_relay_gives_its_leases_back(any_store: Store) -> None:
    await add(any_store, delivery("P1", event_id="E1"), delivery("P2", event_id="E1"))
    inbox = any_store.inbox
    assert len(await inbox.claim("stopping", T0, LEASE, 10)) == 2
    assert await inbox.release("stopping") == 2
    assert len(await inbox.claim("next", T0, LEASE, 10)) == 2  # at once, not after the lease


async def test_failed_entries_are_kept_and_done_ones_pruned_after_retention(any_store: Store) -> None:
    done_early, done_late, failed, pending = await add(
        any_store, *(delivery(f"P{index}", event_id="E") for index in range(4))
    )
    inbox = any_store.inbox
    await inbox.claim("a", T0, LEASE, 10)
    await inbox.settle("a", [Settlement.done(done_early, {})], T0)
    await inbox.settle(
        "a", [Settlement.done(done_late, {}), Settlement.failed(failed, "unparseable")], T0 + timedelta(hours=2)
    )
    assert await inbox.prune(T0 + timedelta(hours=1)) == 1
    remaining, _ = await inbox.list()
    assert [entry.id for entry in remaining] == [pending, failed, done_late]  # newest first
    assert await inbox.prune(T0 + timedelta(days=365)) == 1  # done_late; the failed and pending ones stay
    assert {entry.id: entry.state for entry in (await inbox.list())[0]} == {
        pending: InboxState.PENDING,
        failed: InboxState.FAILED,
    }
    assert (await inbox.get(failed)).last_error == "unparseable"


async def test_listing_pages_newest_first_with_counts_and_backlog(any_store: Store) -> None:
    ids = await add(any_store, *(delivery(f"P{index}", event_id="E") for index in range(5)))
    await add(any_store, delivery("PLATER", event_id="E"), at=T0 + timedelta(seconds=30))
    inbox = any_store.inbox
    await inbox.claim("a", T0, LEASE, 2)
    await inbox.settle("a", [Settlement.done(ids[0], {}), Settlement.failed(ids[1], "bad")], T0)
    page, cursor = await inbox.list(limit=2)
    assert len(page) == 2 and cursor == page[-1].id and page[0].incident_key == "pagerduty:PLATER"
    rest, end = await inbox.list(limit=10, before=cursor)
    assert end is None and [entry.id for entry in rest] == [ids[3], ids[2], ids[1], ids[0]]
    pending, _ = await inbox.list(InboxState.PENDING)
    assert [entry.id for entry in pending] == [page[0].id, ids[4], ids[3], ids[2]]
    assert await inbox.counts() == {InboxState.PENDING: 4, InboxState.DONE: 1, InboxState.FAILED: 1}
    assert await inbox.backlog(T0 + timedelta(seconds=60)) == (4, 60.0)  # the oldest pending came at T0


async def test_an_empty_inbox_has_no_backlog(any_store: Store) -> None:
    assert await any_store.inbox.backlog(T0) == (0, 0.0)
    assert await any_store.inbox.counts() == {state: 0 for state in InboxState}
    assert await any_store.inbox.claim("a", T0, LEASE, 10) == []


def test_a_stored_delivery_that_no_longer_reads_says_so() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        stored_event({"kind": "ticket_change"})
    with pytest.raises(ValueError):
        stored_event({"kind": "incident_event", "event": {"source": "pagerduty"}})
    assert isinstance(stored_event(incident_delivery(pagerduty_event("P1"))), IncidentEvent)


async def test_the_relay_finds_the_owners_of_a_batch_in_one_lookup(any_store: Store) -> None:
    incident = pagerduty_event("POWNED").incident
    await any_store.postmortems.create_if_absent(new_postmortem(incident, created_at=T0))
    owners = await any_store.inbox.owners_of([("pagerduty", "POWNED"), ("pagerduty", "PFREE"), ("opsgenie", "POWNED")])
    assert owners == {("pagerduty", "POWNED"): ("pagerduty-POWNED", "postmortem-pagerduty-POWNED")}
    assert await any_store.inbox.owners_of([]) == {}
