"""The inbox: every incident delivery that passed its signature check, committed before it is answered.

A webhook is the only moment we hear about an incident, so the handler does not wait for Temporal:
it commits the delivery here in one short transaction and answers 202. The relay
(postmortem.app.relay) claims due entries with a lease, starts or signals their workflow and
settles them: `done` with the outcome, `pending` again with a later attempt time while Temporal is
unavailable, or `failed` with the reason when retrying cannot help (kept, never deleted).

Claiming is safe with any number of relays: on PostgreSQL the candidates are locked with
`FOR UPDATE SKIP LOCKED`; on both databases the UPDATE that takes the lease repeats the "pending and
not leased" condition, so two claimers never get the same entry (SQLite writes one at a time). An
entry is claimable only while no older entry of the same incident is still pending: deliveries of
one incident are relayed in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from postmortem.models import Incident, IncidentEvent
from postmortem.store.errors import NotFound
from postmortem.store.tables import InboxEntryRow, IncidentRow, PostmortemRow

INCIDENT_EVENT = "incident_event"
"""The kind of delivery the webhooks store: `{"kind": "incident_event", "event": <IncidentEvent>}`."""


def incident_delivery(event: IncidentEvent) -> dict[str, Any]:
    """What an entry keeps for the relay: the normalised event with its raw payload left out (kept beside it)."""
    without_raw = event.model_copy(update={"incident": event.incident.summary()})
    return {"kind": INCIDENT_EVENT, "event": without_raw.model_dump(mode="json")}


def stored_event(delivery: dict[str, Any]) -> IncidentEvent:
    """The event of a stored delivery; ValueError (or KeyError) when it no longer reads as one."""
    if delivery.get("kind") != INCIDENT_EVENT:
        raise ValueError(f"unknown kind of delivery {delivery.get('kind')!r}")
    return IncidentEvent.model_validate(delivery["event"])


class InboxState(StrEnum):
    PENDING = "pending"  # waiting for the relay (or leased by one right now)
    DONE = "done"  # relayed: `result` says what Temporal answered
    FAILED = "failed"  # can never succeed: `last_error` says why; kept for people to look at


class NewDelivery(BaseModel):
    """One normalised delivery of a request (a request may carry several, e.g. PagerDuty V2 batches)."""

    source: str
    event_id: str | None = None
    delivery_id: str | None = None
    incident_key: str
    delivery: dict[str, Any]
    incident_raw: dict[str, Any] | None = None


class InboxEntry(BaseModel):
    """An entry as people and the relay see it: everything but the raw body and the incident's raw payload."""

    id: int
    source: str
    event_id: str | None
    delivery_id: str | None
    incident_key: str
    headers: dict[str, str]
    delivery: dict[str, Any]
    received_at: datetime
    state: InboxState
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None = None
    done_at: datetime | None = None
    result: dict[str, Any] | None = None


class Receipt(BaseModel):
    """What `add` did with one delivery: a new entry, or the entry that was there first."""

    entry: InboxEntry
    duplicate: bool


@dataclass(frozen=True)
class Settlement:
    """The relay's verdict on one claimed entry."""

    entry_id: int
    state: InboxState
    result: dict[str, Any] | None = None
    error: str | None = None
    retry_at: datetime | None = None

    @classmethod
    def done(cls, entry_id: int, result: dict[str, Any]) -> Settlement:
        return cls(entry_id, InboxState.DONE, result=result)

    @classmethod
    def retry(cls, entry_id: int, error: str, at: datetime) -> Settlement:
        return cls(entry_id, InboxState.PENDING, error=error, retry_at=at)

    @classmethod
    def failed(cls, entry_id: int, error: str) -> Settlement:
        return cls(entry_id, InboxState.FAILED, error=error)


# Every column but the two big ones: the relay and the listing never read the payloads.
_COLUMNS = (
    InboxEntryRow.id,
    InboxEntryRow.source,
    InboxEntryRow.event_id,
    InboxEntryRow.delivery_id,
    InboxEntryRow.incident_key,
    InboxEntryRow.headers,
    InboxEntryRow.delivery,
    InboxEntryRow.received_at,
    InboxEntryRow.state,
    InboxEntryRow.attempts,
    InboxEntryRow.next_attempt_at,
    InboxEntryRow.lease_owner,
    InboxEntryRow.lease_expires_at,
    InboxEntryRow.last_error,
    InboxEntryRow.done_at,
    InboxEntryRow.result,
)


_TABLE = cast(Table, InboxEntryRow.__table__)
_STILL_OURS = and_(
    _TABLE.c.id == bindparam("b_id"),
    _TABLE.c.lease_owner == bindparam("b_owner"),
    _TABLE.c.state == InboxState.PENDING.value,
)
_RELEASED = {"lease_owner": None, "lease_expires_at": None}
# Plain table statements with bound parameters, so a batch of verdicts runs as one executemany.
_SETTLE = {
    InboxState.DONE: update(_TABLE)
    .where(_STILL_OURS)
    .values(**_RELEASED, state=InboxState.DONE.value, result=bindparam("b_result"), done_at=bindparam("b_now")),
    InboxState.FAILED: update(_TABLE)
    .where(_STILL_OURS)
    .values(**_RELEASED, state=InboxState.FAILED.value, last_error=bindparam("b_error"), done_at=bindparam("b_now")),
    InboxState.PENDING: update(_TABLE)
    .where(_STILL_OURS)
    .values(**_RELEASED, last_error=bindparam("b_error"), next_attempt_at=bindparam("b_retry_at")),
}


def _entry(row: Any) -> InboxEntry:
    return InboxEntry.model_validate(dict(row._mapping))


class InboxStore:
    def __init__(self, sessions: async_sessionmaker, dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect
        # Set after every commit of a new entry, so a relay in this process starts at once instead of
        # at its next poll (entries committed by other processes are found by polling).
        self.arrived = asyncio.Event()
        self._write_lock = asyncio.Lock() if dialect == "sqlite" else None

    @contextlib.asynccontextmanager
    async def _writer(self) -> AsyncIterator[AsyncSession]:
        """A session for a write. SQLite takes one writer at a time and lets the others sleep-poll for
        its lock (busy_timeout), which put seconds on the slowest acks under concurrent webhooks: this
        process's inbox writers wait their turn here instead, woken the moment the lock is free."""
        if self._write_lock is None:
            async with self._sessions() as session:
                yield session
            return
        async with self._write_lock, self._sessions() as session:
            yield session

    def _insert(self) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(InboxEntryRow)

    async def add(
        self, body: bytes, headers: dict[str, str], deliveries: Sequence[NewDelivery], now: datetime
    ) -> list[Receipt]:
        """Commit the deliveries of one request in one transaction; a duplicate is not stored twice.

        A duplicate is, for the same incident of the same source, the same event id (a retry, or the
        event sent again) or the same delivery id (PagerDuty's `X-Webhook-Id`, which the signature does
        not cover: it is never trusted across incidents). Its receipt carries the entry stored first,
        with that entry's state and outcome.
        """
        receipts: list[Receipt | int] = []  # a new entry's receipt, or the id of the entry a duplicate repeats
        async with self._writer() as session:
            for new in deliveries:
                values: dict[str, Any] = {
                    **new.model_dump(exclude={"incident_raw"}),
                    "headers": headers,
                    "received_at": now,
                    "state": InboxState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                statement = (
                    self._insert()
                    .values(**values, body=body, incident_raw=new.incident_raw)
                    .on_conflict_do_nothing()
                    .returning(InboxEntryRow.id)
                )
                entry_id = (await session.execute(statement)).scalar_one_or_none()
                if entry_id is None:
                    receipts.append(await self._first_of(session, new))
                else:  # what was just written: no need to read it back
                    entry = InboxEntry(id=entry_id, **values, lease_owner=None, lease_expires_at=None)
                    receipts.append(Receipt(entry=entry, duplicate=False))
            earlier = await self._load(session, [item for item in receipts if isinstance(item, int)])
            await session.commit()
        if any(isinstance(item, Receipt) for item in receipts):
            self.arrived.set()
        return [
            item if isinstance(item, Receipt) else Receipt(entry=earlier[item], duplicate=True) for item in receipts
        ]

    async def _first_of(self, session: AsyncSession, new: NewDelivery) -> int:
        same = []
        if new.event_id is not None:
            same.append(InboxEntryRow.event_id == new.event_id)
        if new.delivery_id is not None:
            same.append(InboxEntryRow.delivery_id == new.delivery_id)
        entry_id = None
        if same:
            entry_id = await session.scalar(
                select(InboxEntryRow.id)
                .where(InboxEntryRow.source == new.source, InboxEntryRow.incident_key == new.incident_key, or_(*same))
                .order_by(InboxEntryRow.id)
                .limit(1)
            )
        if entry_id is None:  # the conflict was on a row this transaction cannot see: never silently drop
            raise RuntimeError(f"inbox entry for {new.incident_key} conflicted but no earlier entry is visible")
        return entry_id

    async def _load(self, session: AsyncSession, ids: Sequence[int]) -> dict[int, InboxEntry]:
        if not ids:
            return {}
        rows = await session.execute(select(*_COLUMNS).where(InboxEntryRow.id.in_(set(ids))))
        return {entry.id: entry for entry in map(_entry, rows)}

    async def get(self, entry_id: int) -> InboxEntry:
        async with self._sessions() as session:
            entries = await self._load(session, [entry_id])
        if entry_id not in entries:
            raise NotFound(f"no inbox entry {entry_id}")
        return entries[entry_id]

    async def raw_of(self, entry_id: int) -> dict[str, Any] | None:
        """The incident's raw payload as delivered (kept out of workflow inputs); None once pruned."""
        async with self._sessions() as session:
            raw: dict[str, Any] | None = await session.scalar(
                select(InboxEntryRow.incident_raw).where(InboxEntryRow.id == entry_id)
            )
            return raw

    async def with_raw(self, incident: Incident, delivery_id: str | None) -> Incident:
        """The incident with its raw payload put back from the inbox entry, when a workflow input left it out.

        Unchanged when it still carries one (histories from before the inbox) or the entry is gone
        (pruned): the raw payload is evidence, not something a report needs to exist.
        """
        if incident.raw or delivery_id is None or not delivery_id.isdigit():
            return incident
        raw = await self.raw_of(int(delivery_id))
        return incident.model_copy(update={"raw": raw}) if raw else incident

    async def body_of(self, entry_id: int) -> bytes | None:
        """The request body exactly as received (what its signature covered)."""
        async with self._sessions() as session:
            body: bytes | None = await session.scalar(select(InboxEntryRow.body).where(InboxEntryRow.id == entry_id))
            return body

    # The relay's side ---------------------------------------------------------------------------

    async def owners_of(self, incidents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
        """(source, incident id) → (report id, its workflow id) for the incidents some report owns.

        The same lookup as PostmortemStore.owner_of, for a relay's whole batch in one query: one
        query per delivery was most of the relay's time.
        """
        if not incidents:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(IncidentRow.source, IncidentRow.incident_id, PostmortemRow.id, PostmortemRow.workflow_id)
                .join(PostmortemRow, PostmortemRow.id == IncidentRow.postmortem_id)
                .where(tuple_(IncidentRow.source, IncidentRow.incident_id).in_(list(set(incidents))))
            )
            return {(source, incident): (owner, workflow) for source, incident, owner, workflow in rows}

    def _claimable(self, now: datetime) -> Any:
        return and_(
            InboxEntryRow.state == InboxState.PENDING.value,
            InboxEntryRow.next_attempt_at <= now,
            or_(InboxEntryRow.lease_expires_at.is_(None), InboxEntryRow.lease_expires_at <= now),
        )

    async def claim(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[InboxEntry]:
        """Lease up to `limit` due entries to `owner`, oldest first, at most one per incident.

        Each claim counts as an attempt (a relay that dies mid-way used one). The lease runs out by
        itself, so an entry claimed by a process that died is claimed again after `lease`.
        """
        older = aliased(InboxEntryRow)
        waiting_behind = (
            select(older.id)
            .where(
                older.incident_key == InboxEntryRow.incident_key,
                older.state == InboxState.PENDING.value,
                older.id < InboxEntryRow.id,
            )
            .exists()
        )
        candidates = (
            select(InboxEntryRow.id)
            .where(self._claimable(now), ~waiting_behind)
            .order_by(InboxEntryRow.id)
            .limit(limit)
        )
        take = (
            update(InboxEntryRow)
            .values(lease_owner=owner, lease_expires_at=now + lease, attempts=InboxEntryRow.attempts + 1)
            .returning(*_COLUMNS)
            .execution_options(synchronize_session=False)
        )
        if self._dialect == "postgresql":
            async with self._sessions() as session:
                ids = list(await session.scalars(candidates.with_for_update(skip_locked=True, of=InboxEntryRow)))
                rows = list(await session.execute(take.where(InboxEntryRow.id.in_(ids)))) if ids else []
                await session.commit()
        else:
            # SQLite: find the candidates outside the write lock (an idle poll never takes it); the
            # UPDATE asks again whether each is still free, under the one writer SQLite allows.
            async with self._sessions() as session:
                ids = list(await session.scalars(candidates))
            if not ids:
                return []
            async with self._writer() as session:
                rows = list(await session.execute(take.where(InboxEntryRow.id.in_(ids), self._claimable(now))))
                await session.commit()
        return sorted(map(_entry, rows), key=lambda entry: entry.id)

    async def settle(self, owner: str, settlements: Sequence[Settlement], now: datetime) -> int:
        """Record the relay's verdicts in one transaction; only entries still leased to `owner` change."""
        groups: dict[InboxState, list[dict[str, Any]]] = {state: [] for state in InboxState}
        for verdict in settlements:
            groups[verdict.state].append(
                {
                    "b_id": verdict.entry_id,
                    "b_owner": owner,
                    "b_now": now,
                    "b_result": verdict.result,
                    "b_error": verdict.error,
                    "b_retry_at": verdict.retry_at or now,
                }
            )
        settled = 0
        async with self._writer() as session:
            for state, params in groups.items():
                if not params:
                    continue
                # One statement per verdict kind; SQLite runs it as one executemany (one trip to its
                # thread, and a rowcount summed over the rows), PostgreSQL row by row (its asyncpg
                # driver does not count the rows of an executemany).
                batches = [params] if self._dialect == "sqlite" else [[row] for row in params]
                for batch in batches:
                    result = await session.execute(_SETTLE[state], batch)
                    settled += result.rowcount  # type: ignore[attr-defined]
            await session.commit()
        return settled

    async def release(self, owner: str) -> int:
        """Give back the leases of a relay that stops, so another process need not wait for them to run out."""
        async with self._writer() as session:
            result = await session.execute(
                update(InboxEntryRow)
                .where(InboxEntryRow.lease_owner == owner, InboxEntryRow.state == InboxState.PENDING.value)
                .values(lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def prune(self, done_before: datetime) -> int:
        """Delete entries done before the cutoff; failed and pending entries are never deleted."""
        async with self._writer() as session:
            result = await session.execute(
                delete(InboxEntryRow).where(
                    InboxEntryRow.state == InboxState.DONE.value, InboxEntryRow.done_at < done_before
                )
            )
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    # What people see ----------------------------------------------------------------------------

    async def list(
        self, state: InboxState | None = None, *, limit: int = 50, before: int | None = None
    ) -> tuple[list[InboxEntry], int | None]:
        """Newest first; the second value is the `before` of the next page (None on the last one)."""
        query = select(*_COLUMNS).order_by(InboxEntryRow.id.desc()).limit(limit + 1)
        if state is not None:
            query = query.where(InboxEntryRow.state == state.value)
        if before is not None:
            query = query.where(InboxEntryRow.id < before)
        async with self._sessions() as session:
            entries = [_entry(row) for row in await session.execute(query)]
        more = len(entries) > limit
        entries = entries[:limit]
        return entries, entries[-1].id if more else None

    async def counts(self) -> dict[InboxState, int]:
        async with self._sessions() as session:
            rows = await session.execute(select(InboxEntryRow.state, func.count()).group_by(InboxEntryRow.state))
            found = {state: count for state, count in rows}
        return {state: int(found.get(state.value, 0)) for state in InboxState}

    async def backlog(self, now: datetime) -> tuple[int, float]:
        """How many entries wait for the relay, and how long the oldest has waited (0 when none)."""
        async with self._sessions() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(InboxEntryRow.received_at)).where(
                        InboxEntryRow.state == InboxState.PENDING.value
                    )
                )
            ).one()
        if not count or oldest is None:
            return 0, 0.0
        return int(count), max(0.0, (now - oldest).total_seconds())
