"""The review side of a report in the store: its lifecycle state, exports and comment threads."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.models import Status
from postmortem.review.lifecycle import Review
from postmortem.store.errors import NotFound
from postmortem.store.metric_columns import from_review
from postmortem.store.tables import CommentRow, ExportRow, PostmortemRow, ProblemRow, RevisionRow

MENTION = re.compile(r"(?<![\w.])@([\w.+-]+@[\w-]+(?:\.[\w-]+)+|[\w.-]+)")


class Comment(BaseModel):
    id: str
    section: str
    parent_id: str | None
    author: str
    body: str
    mentions: list[str]
    resolved_at: datetime | None
    resolved_by: str | None
    created_at: datetime


def _comment(row: CommentRow) -> Comment:
    return Comment(
        id=row.id,
        section=row.section,
        parent_id=row.parent_id,
        author=row.author,
        body=row.body,
        mentions=list(row.mentions),
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        created_at=row.created_at,
    )


def mentions_in(body: str) -> list[str]:
    return list(dict.fromkeys(MENTION.findall(body)))


class ReviewStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def get(self, postmortem_id: str) -> Review:
        async with self._sessions() as session:
            row = await session.get(PostmortemRow, postmortem_id)
            if row is None:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            return Review.model_validate(row.review) if row.review else Review(status=row.status)

    async def save(self, postmortem_id: str, review: Review, now: datetime) -> None:
        """Lifecycle writes come from the workflow only; they do not bump the edit version.

        A published report back in DRAFT (unpublished) loses its exports and public page in the same
        transaction, so both are gone when the unpublish is answered; ARCHIVED keeps them.
        """
        document = review.model_dump(mode="json")
        async with self._sessions() as session:
            result = await session.execute(
                update(PostmortemRow)
                .where(PostmortemRow.id == postmortem_id)
                .values(
                    review=document,
                    status=review.status.value,
                    updated_at=now,
                    **from_review(document),
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            if review.status == Status.DRAFT and review.published_count > 0:
                await session.execute(delete(ExportRow).where(ExportRow.postmortem_id == postmortem_id))
            await session.commit()

    # Exports -----------------------------------------------------------------------------------

    async def put_export(
        self,
        postmortem_id: str,
        format: str,
        media_type: str,
        content: bytes,
        published_count: int,
        now: datetime,
        slug: str | None = None,
    ) -> None:
        await self.put_exports(postmortem_id, [(format, media_type, content, slug)], published_count, now)

    async def put_exports(
        self,
        postmortem_id: str,
        exports: list[tuple[str, str, bytes, str | None]],
        published_count: int,
        now: datetime,
    ) -> None:
        """Every export of one publication (format, media type, content, slug) in one transaction: a
        reader never finds the HTML of a publication without its public page, or the other way round."""
        async with self._sessions() as session:
            for format, media_type, content, slug in exports:
                await session.execute(
                    delete(ExportRow).where(ExportRow.postmortem_id == postmortem_id, ExportRow.format == format)
                )
                session.add(
                    ExportRow(
                        postmortem_id=postmortem_id,
                        format=format,
                        media_type=media_type,
                        content=content,
                        published_count=published_count,
                        slug=slug,
                        created_at=now,
                    )
                )
            await session.commit()

    async def get_export(self, postmortem_id: str, format: str) -> tuple[str, bytes, int] | None:
        async with self._sessions() as session:
            row = await session.get(ExportRow, (postmortem_id, format))
            return (row.media_type, row.content, row.published_count) if row else None

    async def public_by_slug(self, slug: str) -> bytes | None:
        async with self._sessions() as session:
            row = await session.scalar(select(ExportRow).where(ExportRow.slug == slug, ExportRow.format == "public"))
            return row.content if row else None

    # Comments ----------------------------------------------------------------------------------

    async def add_comment(
        self, postmortem_id: str, *, section: str, author: str, body: str, parent_id: str | None, now: datetime
    ) -> Comment:
        async with self._sessions() as session:
            if parent_id is not None:
                parent = await session.get(CommentRow, parent_id)
                if parent is None or parent.postmortem_id != postmortem_id:
                    raise NotFound(f"no comment {parent_id!r} in post-mortem {postmortem_id!r}")
                section = parent.section
                parent_id = parent.parent_id or parent.id  # threads are one level deep
            row = CommentRow(
                id=secrets.token_hex(8),
                postmortem_id=postmortem_id,
                section=section,
                parent_id=parent_id,
                author=author,
                body=body,
                mentions=mentions_in(body),
                created_at=now,
            )
            session.add(row)
            await session.commit()
            return _comment(row)

    async def comments(self, postmortem_id: str, *, unresolved_only: bool = False) -> list[Comment]:
        query = select(CommentRow).where(CommentRow.postmortem_id == postmortem_id)
        if unresolved_only:
            query = query.where(CommentRow.parent_id.is_(None), CommentRow.resolved_at.is_(None))
        async with self._sessions() as session:
            rows = (await session.scalars(query.order_by(CommentRow.created_at, CommentRow.id))).all()
            return [_comment(row) for row in rows]

    async def resolve_thread(self, postmortem_id: str, comment_id: str, by: str, now: datetime) -> Comment:
        async with self._sessions() as session:
            row = await session.get(CommentRow, comment_id)
            if row is None or row.postmortem_id != postmortem_id:
                raise NotFound(f"no comment {comment_id!r} in post-mortem {postmortem_id!r}")
            root = await session.get(CommentRow, row.parent_id) if row.parent_id else row
            assert root is not None
            if root.resolved_at is None:
                root.resolved_at, root.resolved_by = now, by
            await session.commit()
            return _comment(root)

    async def delete_for(self, postmortem_id: str) -> None:
        """Everything of a deleted report: threads, exports (its public page), problems and revisions."""
        async with self._sessions() as session:
            for table in (CommentRow, ExportRow, ProblemRow, RevisionRow):
                await session.execute(delete(table).where(table.postmortem_id == postmortem_id))
            await session.commit()
