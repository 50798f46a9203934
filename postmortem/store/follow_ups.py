"""The follow-up checks recorded on a published report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.store.metric_columns import from_follow_up
from postmortem.store.tables import FollowUpRow, PostmortemRow


class FollowUpStore:
    def __init__(self, sessions: async_sessionmaker, dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect

    async def record(self, postmortem_id: str, day: int, data: dict[str, Any], now: datetime) -> None:
        insert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(FollowUpRow)
        statement = insert.values(postmortem_id=postmortem_id, day=day, data=data, checked_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=["postmortem_id", "day"], set_={"data": data, "checked_at": now}
        )
        async with self._sessions() as session:
            await session.execute(statement)
            latest = await session.scalar(
                select(FollowUpRow.data)
                .where(FollowUpRow.postmortem_id == postmortem_id)
                .order_by(FollowUpRow.day.desc())
                .limit(1)
            )
            await session.execute(
                update(PostmortemRow).where(PostmortemRow.id == postmortem_id).values(**from_follow_up(latest or {}))
            )
            await session.commit()

    async def list(self, postmortem_id: str) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(FollowUpRow).where(FollowUpRow.postmortem_id == postmortem_id).order_by(FollowUpRow.day)
                )
            ).all()
            return [{"day": row.day, "checked_at": row.checked_at.isoformat(), **row.data} for row in rows]

    async def delete_for(self, postmortem_id: str) -> None:
        async with self._sessions() as session:
            await session.execute(delete(FollowUpRow).where(FollowUpRow.postmortem_id == postmortem_id))
            await session.commit()
