"""The co-edited documents' persistence: updates appended as they come, compacted, and the state that
last agreed with the stored text.

Every process that has a report open polls `since()` for the rows others appended (the fan-out
between API replicas goes through this table); an edit of the text outside the document (a REST
PATCH) writes its update here in the same transaction as the text (`PostmortemStore.update`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pycrdt import merge_updates
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from postmortem.store.errors import VersionConflict
from postmortem.store.tables import DocumentSyncRow, DocumentUpdateRow


@dataclass(frozen=True)
class DocumentWrite:
    """What an edit of the text does to the document, written with the text in one transaction:
    an update to append, and the new base (the document as it agrees with the new text). `base_version`
    is the base it was computed from (None: the first base); another write in between refuses it."""

    update: bytes
    state: bytes
    base_version: int | None
    origin: str


@dataclass(frozen=True)
class StoredUpdate:
    id: int
    data: bytes
    origin: str


@dataclass(frozen=True)
class SyncPoint:
    version: int
    state: bytes


async def write_in(
    session: AsyncSession, postmortem_id: str, version: int, write: DocumentWrite, now: datetime
) -> None:
    """Inside another store's transaction: append the update and move the base to `version`, or raise
    VersionConflict (the caller rolls back) when another write moved the base first."""
    if write.base_version is None:
        session.add(DocumentSyncRow(postmortem_id=postmortem_id, version=version, state=write.state))
        try:
            await session.flush()
        except IntegrityError as exc:
            raise VersionConflict(version) from exc
    else:
        moved = await session.execute(
            update(DocumentSyncRow)
            .where(DocumentSyncRow.postmortem_id == postmortem_id, DocumentSyncRow.version == write.base_version)
            .values(version=version, state=write.state)
        )
        if moved.rowcount == 0:  # type: ignore[attr-defined]
            raise VersionConflict(version)
    if write.update:
        session.add(
            DocumentUpdateRow(postmortem_id=postmortem_id, data=write.update, origin=write.origin, created_at=now)
        )


class DocumentStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def append(self, postmortem_id: str, data: bytes, origin: str, now: datetime) -> int:
        async with self._sessions() as session:
            row = DocumentUpdateRow(postmortem_id=postmortem_id, data=data, origin=origin, created_at=now)
            session.add(row)
            await session.commit()
            return row.id

    async def since(
        self, postmortem_id: str, after: int, seen: set[int] | frozenset[int] = frozenset()
    ) -> list[StoredUpdate]:
        """The updates after row `after` but those in `seen`, oldest first (all of them with `after=0`).
        Ids first, then the data of the unseen ones: a poller re-reads a window it mostly has."""
        mine = DocumentUpdateRow.postmortem_id == postmortem_id
        async with self._sessions() as session:
            ids = (await session.scalars(select(DocumentUpdateRow.id).where(mine, DocumentUpdateRow.id > after))).all()
            wanted = [row_id for row_id in ids if row_id not in seen]
            if not wanted:
                return []
            rows = await session.execute(
                select(DocumentUpdateRow.id, DocumentUpdateRow.data, DocumentUpdateRow.origin)
                .where(mine, DocumentUpdateRow.id.in_(wanted))
                .order_by(DocumentUpdateRow.id)
            )
            return [StoredUpdate(id=row.id, data=row.data, origin=row.origin) for row in rows]

    async def count(self, postmortem_id: str) -> int:
        async with self._sessions() as session:
            counted = await session.scalar(
                select(func.count())
                .select_from(DocumentUpdateRow)
                .where(DocumentUpdateRow.postmortem_id == postmortem_id)
            )
            return int(counted or 0)

    async def compact(self, postmortem_id: str, now: datetime) -> int:
        """Fold a report's rows into one (same document, one row): returns how many rows it replaced.
        Pollers that see the folded row apply it again, which changes nothing (updates are idempotent)."""
        async with self._sessions() as session:
            rows = list(
                await session.execute(
                    select(DocumentUpdateRow.id, DocumentUpdateRow.data)
                    .where(DocumentUpdateRow.postmortem_id == postmortem_id)
                    .order_by(DocumentUpdateRow.id)
                )
            )
            if len(rows) < 2:
                return 0
            last = rows[-1].id
            await session.execute(
                delete(DocumentUpdateRow).where(
                    DocumentUpdateRow.postmortem_id == postmortem_id, DocumentUpdateRow.id <= last
                )
            )
            merged = merge_updates(*[row.data for row in rows])
            session.add(
                DocumentUpdateRow(postmortem_id=postmortem_id, data=merged, origin="compaction", created_at=now)
            )
            await session.commit()
            return len(rows)

    async def sync_point(self, postmortem_id: str) -> SyncPoint | None:
        async with self._sessions() as session:
            row = await session.get(DocumentSyncRow, postmortem_id)
            return SyncPoint(version=row.version, state=row.state) if row is not None else None

    async def seed(self, postmortem_id: str, version: int, state: bytes, now: datetime) -> bool:
        """The first state of a report's document, once: False when another process seeded it first."""
        async with self._sessions() as session:
            session.add(DocumentSyncRow(postmortem_id=postmortem_id, version=version, state=state))
            session.add(DocumentUpdateRow(postmortem_id=postmortem_id, data=state, origin="seed", created_at=now))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
            return True

    async def rebased(self, postmortem_id: str, version: int, write: DocumentWrite, now: datetime) -> bool:
        """A change of the text made outside the document (a redraft by the workflow), merged in: False
        when another process merged it (or wrote) first."""
        async with self._sessions() as session:
            try:
                await write_in(session, postmortem_id, version, write, now)
            except VersionConflict:
                await session.rollback()
                return False
            await session.commit()
            return True

    async def delete_for(self, postmortem_id: str) -> None:
        async with self._sessions() as session:
            await session.execute(delete(DocumentUpdateRow).where(DocumentUpdateRow.postmortem_id == postmortem_id))
            await session.execute(delete(DocumentSyncRow).where(DocumentSyncRow.postmortem_id == postmortem_id))
            await session.commit()
