"""Meetings and deliveries: the current invite revision, and what was already sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.meeting.invite import in_voice
from postmortem.meeting.models import Meeting
from postmortem.models import Language
from postmortem.store.tables import DeliveryAttemptRow, DeliveryRow, MeetingRow


class MeetingStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def get(self, postmortem_id: str) -> Meeting | None:
        async with self._sessions() as session:
            row = await session.get(MeetingRow, postmortem_id)
            return Meeting.model_validate(row.data) if row else None

    async def create_if_absent(self, meeting: Meeting, now: datetime) -> Meeting:
        """The first plan wins: a retried planning step returns it instead of moving the meeting."""
        async with self._sessions() as session:
            session.add(
                MeetingRow(
                    postmortem_id=meeting.postmortem_id,
                    sequence=meeting.sequence,
                    status=meeting.status.value,
                    start_at=meeting.start,
                    data=meeting.model_dump(mode="json"),
                    updated_at=now,
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
        stored = await self.get(meeting.postmortem_id)
        assert stored is not None
        return stored

    async def save_revision(self, meeting: Meeting, now: datetime) -> Meeting:
        """Store `meeting` if it is the next revision; a replayed write of the same revision is a no-op."""
        async with self._sessions() as session:
            await session.execute(
                update(MeetingRow)
                .where(MeetingRow.postmortem_id == meeting.postmortem_id, MeetingRow.sequence < meeting.sequence)
                .values(
                    sequence=meeting.sequence,
                    status=meeting.status.value,
                    start_at=meeting.start,
                    data=meeting.model_dump(mode="json"),
                    updated_at=now,
                )
            )
            await session.commit()
        stored = await self.get(meeting.postmortem_id)
        assert stored is not None
        return stored

    async def follow_report(self, postmortem_id: str, language: Language, zone: str, now: datetime) -> Meeting | None:
        """The report's language or zone changed: the meeting speaks and shows its times in them too, at
        the same revision (only words and the zone they are written in change, never when it starts;
        the next revision sent, and every download, reads in them). None without a meeting."""
        for _ in range(5):  # a revision saved meanwhile: read it again
            meeting = await self.get(postmortem_id)
            if meeting is None:
                return meeting
            voiced = in_voice(meeting, language, zone)
            if voiced is meeting:
                return meeting
            async with self._sessions() as session:
                result = await session.execute(
                    update(MeetingRow)
                    .where(MeetingRow.postmortem_id == postmortem_id, MeetingRow.sequence == meeting.sequence)
                    .values(data=voiced.model_dump(mode="json"), updated_at=now)
                )
                await session.commit()
            if getattr(result, "rowcount", 0):
                return voiced
        return await self.get(postmortem_id)

    async def delivered(self, key: str) -> bool:
        async with self._sessions() as session:
            return await session.get(DeliveryRow, key) is not None

    async def begin_delivery(self, key: str, postmortem_id: str, channel: str, started_at: datetime) -> datetime | None:
        """Note that sending `key` begins; the start of an earlier attempt that never heard back, if any.

        An earlier attempt means a worker died mid-send: the outside world may have the message already,
        so the caller asks it (where it can be asked) before sending again."""
        async with self._sessions() as session:
            earlier = await session.get(DeliveryAttemptRow, key)
            if earlier is not None:
                return earlier.started_at
            session.add(
                DeliveryAttemptRow(key=key, postmortem_id=postmortem_id, channel=channel, started_at=started_at)
            )
            try:
                await session.commit()
            except IntegrityError:  # a concurrent attempt (two workers) began first
                await session.rollback()
                row = await session.get(DeliveryAttemptRow, key)
                return row.started_at if row is not None else None
            return None

    async def record_delivery(
        self, key: str, postmortem_id: str, channel: str, detail: str | None, now: datetime
    ) -> None:
        async with self._sessions() as session:
            session.add(
                DeliveryRow(key=key, postmortem_id=postmortem_id, channel=channel, detail=detail, created_at=now)
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()

    async def deliveries(self, postmortem_id: str) -> list[tuple[str, str]]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.postmortem_id == postmortem_id)
                .order_by(DeliveryRow.created_at, DeliveryRow.key)
            )
            return [(row.key, row.channel) for row in rows]

    async def delete_for(self, postmortem_id: str) -> None:
        async with self._sessions() as session:
            await session.execute(delete(MeetingRow).where(MeetingRow.postmortem_id == postmortem_id))
            await session.commit()
