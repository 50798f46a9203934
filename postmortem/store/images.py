"""Images of a post-mortem, bytes and all, in the database (BLOB on SQLite, BYTEA on PostgreSQL).

One report holds each distinct content once: (postmortem_id, sha256) is unique, so a retried upload
returns the image already stored. The per-report limit is checked in the same transaction as the
insert, after it, so concurrent uploads cannot pass it together: SQLite has one writer at a time, and
on PostgreSQL a transaction-scoped advisory lock per report serialises the adders.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, defer, mapped_column

from postmortem.store.tables import Base, UTCDateTime


class ImageRow(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("postmortem_id", "sha256", name="uq_images_postmortem_sha256"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    postmortem_id: Mapped[str] = mapped_column(String(200), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredImage(BaseModel):
    id: str
    postmortem_id: str
    media_type: str
    size: int
    sha256: str
    filename: str
    created_at: datetime


class TooManyImages(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"the post-mortem already has {count} images")
        self.count = count


def _image(row: ImageRow) -> StoredImage:
    return StoredImage(
        id=row.id,
        postmortem_id=row.postmortem_id,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        filename=row.filename,
        created_at=row.created_at,
    )


_WITHOUT_DATA = defer(ImageRow.data, raiseload=True)  # listing never loads the bytes


class ImageStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def add(
        self, postmortem_id: str, data: bytes, media_type: str, filename: str, now: datetime, *, max_images: int
    ) -> tuple[StoredImage, bool]:
        """Store the image; (image, True) when new, (the stored one, False) when these bytes are there already.

        Raises TooManyImages when the report already holds `max_images` other images.
        """
        digest = hashlib.sha256(data).hexdigest()
        row = ImageRow(
            id=uuid.uuid4().hex,
            postmortem_id=postmortem_id,
            sha256=digest,
            media_type=media_type,
            size=len(data),
            filename=filename,
            data=data,
            created_at=now,
        )
        async with self._sessions() as session:
            await self._lock(session, postmortem_id)
            session.add(row)
            try:
                await session.flush()  # the first statement writes: SQLite takes its write lock here
            except IntegrityError:
                await session.rollback()
                existing = await self.find(postmortem_id, digest)
                if existing is None:
                    raise
                return existing, False
            count = await session.scalar(
                select(func.count()).select_from(ImageRow).where(ImageRow.postmortem_id == postmortem_id)
            )
            if count is not None and count > max_images:
                await session.rollback()
                raise TooManyImages(count - 1)
            stored = _image(row)
            await session.commit()
            return stored, True

    @staticmethod
    async def _lock(session: AsyncSession, postmortem_id: str) -> None:
        if session.get_bind().dialect.name == "postgresql":
            key = func.hashtextextended(f"postmortem-images:{postmortem_id}", 0)
            await session.execute(select(func.pg_advisory_xact_lock(key)))

    async def find(self, postmortem_id: str, sha256: str) -> StoredImage | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(ImageRow)
                .options(_WITHOUT_DATA)
                .where(ImageRow.postmortem_id == postmortem_id, ImageRow.sha256 == sha256)
            )
            return _image(row) if row else None

    async def list(self, postmortem_id: str) -> list[StoredImage]:
        """Oldest first; the bytes are not loaded."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ImageRow)
                .options(_WITHOUT_DATA)
                .where(ImageRow.postmortem_id == postmortem_id)
                .order_by(ImageRow.created_at, ImageRow.id)
            )
            return [_image(row) for row in rows]

    async def get(self, postmortem_id: str, image_id: str) -> tuple[StoredImage, bytes] | None:
        """The image and its bytes, or None (also when the id belongs to another report)."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(ImageRow).where(ImageRow.id == image_id, ImageRow.postmortem_id == postmortem_id)
            )
            return (_image(row), row.data) if row else None

    async def count(self, postmortem_id: str) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(ImageRow).where(ImageRow.postmortem_id == postmortem_id)
            )
            return count or 0

    async def delete(self, postmortem_id: str, image_id: str) -> bool:
        """True when the image was there."""
        async with self._sessions() as session:
            result = await session.execute(
                delete(ImageRow).where(ImageRow.id == image_id, ImageRow.postmortem_id == postmortem_id)
            )
            await session.commit()
            return bool(result.rowcount)

    async def delete_for(self, postmortem_id: str) -> int:
        """Remove every image of a report (when the report itself is deleted); how many there were."""
        async with self._sessions() as session:
            result = await session.execute(delete(ImageRow).where(ImageRow.postmortem_id == postmortem_id))
            await session.commit()
            return int(result.rowcount or 0)
