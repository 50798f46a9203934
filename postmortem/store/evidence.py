"""The evidence store: gathered timeline entries, per-source gather status, Alertmanager alerts.

Big incidents live here, not in workflow histories: activities write pages of entries as they
fetch them and hand the workflow only counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.evidence.models import EntryKind, EvidenceSource, GatherState, SourceStatus, TimelineEntry
from postmortem.models import Person
from postmortem.store.tables import AlertEventRow, SourceStatusRow, TimelineEntryRow


def _insert(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _entry(row: TimelineEntryRow) -> TimelineEntry:
    return TimelineEntry(
        key=row.key,
        at=row.at,
        kind=EntryKind(row.kind),
        source=EvidenceSource(row.source),
        text=row.text,
        actor=row.actor,
        evidence_url=row.evidence_url,
        incident_id=row.incident_id,
        people=[Person.model_validate(person) for person in row.people or []],
    )


class EvidenceStore:
    def __init__(self, sessions: async_sessionmaker, dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect

    async def add_entries(self, postmortem_id: str, entries: list[TimelineEntry]) -> int:
        """Insert what is new; an entry already stored (same key) is left as it is. Returns how many were new."""
        if not entries:
            return 0  # no session for nothing
        async with self._sessions() as session:
            added = await self._add_entries(session, postmortem_id, entries)
            await session.commit()
            return added

    async def draft_evidence(
        self, postmortem_id: str, entries: list[TimelineEntry], statuses: list[SourceStatus], now: datetime
    ) -> tuple[list[SourceStatus], list[TimelineEntry]]:
        """The draft's one visit: add the incident's own entries and the statuses of the sources not
        gathered, and read back every source's status and the whole timeline, in one transaction."""
        async with self._sessions() as session:
            await self._add_entries(session, postmortem_id, entries)
            await self._set_statuses(session, postmortem_id, statuses, now)
            read = await self._statuses(session, postmortem_id), await self._entries(session, postmortem_id)
            await session.commit()
            return read

    async def record_gather(
        self, postmortem_id: str, status: SourceStatus, entries: list[TimelineEntry], now: datetime
    ) -> int:
        """A gather's end in one transaction: its last entries, and its status with the number of entries
        its source has for the report (returned)."""
        async with self._sessions() as session:
            await self._add_entries(session, postmortem_id, entries)
            count = await self._count(session, postmortem_id, sources=[status.source])
            await self._set_statuses(session, postmortem_id, [status.model_copy(update={"entries": count})], now)
            await session.commit()
            return count

    async def _add_entries(self, session: Any, postmortem_id: str, entries: list[TimelineEntry]) -> int:
        if not entries:
            return 0
        rows: list[dict[str, Any]] = [
            {
                "postmortem_id": postmortem_id,
                "key": e.key,
                "at": e.at,
                "kind": e.kind.value,
                "source": e.source.value,
                "actor": e.actor,
                "text": e.text,
                "evidence_url": e.evidence_url,
                "incident_id": e.incident_id,
                "people": [person.model_dump(mode="json", exclude_none=True) for person in e.people] or None,
            }
            for e in {e.key: e for e in entries}.values()
        ]
        # One cached statement run over the page (executemany), not a fresh multi-VALUES compile per page.
        statement = _insert(self._dialect, TimelineEntryRow).on_conflict_do_nothing(
            index_elements=["postmortem_id", "key"]
        )
        before = await self._count_keys(session, postmortem_id, [row["key"] for row in rows])
        await session.execute(statement, rows)
        return len(rows) - before

    def _filtered(
        self, query: Any, postmortem_id: str, kinds: list[EntryKind] | None, sources: list[EvidenceSource] | None
    ) -> Any:
        query = query.where(TimelineEntryRow.postmortem_id == postmortem_id)
        if kinds:
            query = query.where(TimelineEntryRow.kind.in_([k.value for k in kinds]))
        if sources:
            query = query.where(TimelineEntryRow.source.in_([s.value for s in sources]))
        return query

    @staticmethod
    async def _count_keys(session: Any, postmortem_id: str, keys: list[str]) -> int:
        query = (
            select(func.count())
            .select_from(TimelineEntryRow)
            .where(TimelineEntryRow.postmortem_id == postmortem_id, TimelineEntryRow.key.in_(keys))
        )
        return int(await session.scalar(query) or 0)

    async def entries(
        self,
        postmortem_id: str,
        *,
        kinds: list[EntryKind] | None = None,
        sources: list[EvidenceSource] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[TimelineEntry]:
        async with self._sessions() as session:
            return await self._entries(session, postmortem_id, kinds=kinds, sources=sources, limit=limit, offset=offset)

    async def _entries(
        self,
        session: Any,
        postmortem_id: str,
        *,
        kinds: list[EntryKind] | None = None,
        sources: list[EvidenceSource] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[TimelineEntry]:
        query = self._filtered(select(TimelineEntryRow), postmortem_id, kinds, sources)
        query = query.order_by(TimelineEntryRow.at, TimelineEntryRow.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [_entry(row) for row in (await session.scalars(query)).all()]

    async def count(
        self, postmortem_id: str, *, kinds: list[EntryKind] | None = None, sources: list[EvidenceSource] | None = None
    ) -> int:
        async with self._sessions() as session:
            return await self._count(session, postmortem_id, kinds=kinds, sources=sources)

    async def _count(
        self,
        session: Any,
        postmortem_id: str,
        *,
        kinds: list[EntryKind] | None = None,
        sources: list[EvidenceSource] | None = None,
    ) -> int:
        query = self._filtered(select(func.count()).select_from(TimelineEntryRow), postmortem_id, kinds, sources)
        return int(await session.scalar(query) or 0)

    async def set_status(self, postmortem_id: str, status: SourceStatus, now: datetime) -> None:
        await self.set_statuses(postmortem_id, [status], now)

    async def set_statuses(self, postmortem_id: str, statuses: list[SourceStatus], now: datetime) -> None:
        """Each source's state, in one transaction."""
        if not statuses:
            return
        async with self._sessions() as session:
            await self._set_statuses(session, postmortem_id, statuses, now)
            await session.commit()

    async def _set_statuses(
        self, session: Any, postmortem_id: str, statuses: list[SourceStatus], now: datetime
    ) -> None:
        for status in statuses:
            values = {
                "postmortem_id": postmortem_id,
                "source": status.source.value,
                "incident_id": status.incident_id,
                "state": status.state.value,
                "entries": status.entries,
                "detail": status.detail,
                "updated_at": now,
            }
            statement = _insert(self._dialect, SourceStatusRow).values(values)
            statement = statement.on_conflict_do_update(
                index_elements=["postmortem_id", "source", "incident_id"],
                set_={key: values[key] for key in ("state", "entries", "detail", "updated_at")},
            )
            await session.execute(statement)

    async def statuses(self, postmortem_id: str) -> list[SourceStatus]:
        async with self._sessions() as session:
            return await self._statuses(session, postmortem_id)

    @staticmethod
    async def _statuses(session: Any, postmortem_id: str) -> list[SourceStatus]:
        query = (
            select(SourceStatusRow)
            .where(SourceStatusRow.postmortem_id == postmortem_id)
            .order_by(SourceStatusRow.source, SourceStatusRow.incident_id)
        )
        return [
            SourceStatus(
                source=EvidenceSource(row.source),
                incident_id=row.incident_id,
                state=GatherState(row.state),
                entries=row.entries,
                detail=row.detail,
            )
            for row in (await session.scalars(query)).all()
        ]

    async def delete_for(self, postmortem_id: str) -> None:
        async with self._sessions() as session:
            await session.execute(delete(TimelineEntryRow).where(TimelineEntryRow.postmortem_id == postmortem_id))
            await session.execute(delete(SourceStatusRow).where(SourceStatusRow.postmortem_id == postmortem_id))
            await session.commit()

    # Alertmanager ------------------------------------------------------------------------------

    async def record_alerts(self, alerts: list[dict[str, Any]], now: datetime) -> int:
        """Upsert by (fingerprint, start): a resolved notification updates the firing one."""
        count = 0
        async with self._sessions() as session:
            for alert in alerts:
                values = {**alert, "received_at": now}
                insert = _insert(self._dialect, AlertEventRow).values(values)
                statement = insert.on_conflict_do_update(
                    index_elements=["fingerprint", "starts_at"],
                    set_={key: values[key] for key in ("status", "ends_at", "annotations", "labels", "received_at")},
                    # A late "firing" (e.g. from an HA peer) never reopens an alert already resolved.
                    where=(AlertEventRow.status != "resolved") | (insert.excluded.status == "resolved"),
                )
                await session.execute(statement)
                count += 1
            await session.commit()
        return count

    async def alerts_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        query = (
            select(AlertEventRow)
            .where(AlertEventRow.starts_at <= end)
            .where((AlertEventRow.ends_at.is_(None)) | (AlertEventRow.ends_at >= start))
            .order_by(AlertEventRow.starts_at)
        )
        async with self._sessions() as session:
            return [
                {
                    "fingerprint": row.fingerprint,
                    "status": row.status,
                    "labels": row.labels,
                    "annotations": row.annotations,
                    "starts_at": row.starts_at,
                    "ends_at": row.ends_at,
                    "generator_url": row.generator_url,
                }
                for row in (await session.scalars(query)).all()
            ]
