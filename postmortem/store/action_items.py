"""The action items of the reports: added, edited and deleted by people, ticket fields set by the system.

`ActionItemStore` is the base of `PostmortemStore`, so `Store.postmortems` hands out both: an action
item lives and dies with its report, and every write to one touches the report's `updated_at`. Edits
by people use optimistic concurrency (the version they read); ticket writes and ticket-status
syncs are system writes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.models import ActionItem, ActionItemStatus, Priority
from postmortem.review.visibility import Reader
from postmortem.store.errors import NotFound, VersionConflict
from postmortem.store.listing import visible_to
from postmortem.store.tables import ActionItemRow, PostmortemRow

__all__ = ["ActionItemStore", "item_model"]


def item_model(row: ActionItemRow) -> ActionItem:
    """The stored row as the shared model (the row's version travels separately, as an ETag)."""
    return ActionItem(
        id=row.id,
        description=row.description,
        owner=row.owner,
        due_date=row.due_date,
        priority=Priority(row.priority),
        status=ActionItemStatus(row.status),
        ticket_key=row.ticket_key,
        ticket_url=row.ticket_url,
        ticket_tracker=row.ticket_tracker,
        completed_at=row.completed_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _overdue(today: date) -> ColumnElement[bool]:
    """Due before `today` and still to do (as the API's `overdue` flag)."""
    return and_(
        ActionItemRow.due_date.is_not(None),
        ActionItemRow.due_date < today,
        ActionItemRow.status.in_([ActionItemStatus.OPEN.value, ActionItemStatus.IN_PROGRESS.value]),
    )


class ActionItemStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def add_action_item(
        self,
        postmortem_id: str,
        *,
        description: str,
        owner: str | None,
        due_date: date | None,
        priority: Priority,
        status: ActionItemStatus,
        now: datetime,
    ) -> ActionItem:
        async with self._sessions() as session:
            if await session.get(PostmortemRow, postmortem_id) is None:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            row = ActionItemRow(
                id=uuid.uuid4().hex,
                postmortem_id=postmortem_id,
                description=description,
                owner=owner,
                due_date=due_date,
                priority=priority.value,
                status=status.value,
                version=1,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await self._touch(session, postmortem_id, now)
            await session.commit()
            return item_model(row)

    async def get_action_item(self, postmortem_id: str, item_id: str) -> tuple[ActionItem, int]:
        async with self._sessions() as session:
            row = await session.get(ActionItemRow, item_id)
            if row is None or row.postmortem_id != postmortem_id:
                raise NotFound(f"no action item {item_id!r} in post-mortem {postmortem_id!r}")
            return item_model(row), row.version

    async def update_action_item(
        self, postmortem_id: str, item_id: str, expected_version: int | None, values: dict[str, Any], now: datetime
    ) -> tuple[ActionItem, int]:
        conditions = [ActionItemRow.id == item_id, ActionItemRow.postmortem_id == postmortem_id]
        if expected_version is not None:
            conditions.append(ActionItemRow.version == expected_version)
        async with self._sessions() as session:
            result = await session.execute(
                update(ActionItemRow)
                .where(*conditions)
                .values(**values, version=ActionItemRow.version + 1, updated_at=now)
            )
            if result.rowcount == 0:
                row = await session.get(ActionItemRow, item_id)
                if row is None or row.postmortem_id != postmortem_id:
                    raise NotFound(f"no action item {item_id!r} in post-mortem {postmortem_id!r}")
                raise VersionConflict(row.version)
            await self._touch(session, postmortem_id, now)
            await session.commit()
        return await self.get_action_item(postmortem_id, item_id)

    async def delete_action_item(self, postmortem_id: str, item_id: str, now: datetime) -> None:
        async with self._sessions() as session:
            result = await session.execute(
                delete(ActionItemRow).where(ActionItemRow.id == item_id, ActionItemRow.postmortem_id == postmortem_id)
            )
            if result.rowcount == 0:
                raise NotFound(f"no action item {item_id!r} in post-mortem {postmortem_id!r}")
            await self._touch(session, postmortem_id, now)
            await session.commit()

    async def set_ticket(
        self, postmortem_id: str, item_id: str, tracker: str, key: str, url: str, now: datetime
    ) -> None:
        """Record the ticket an action item got (a system field: no edit conflict for people)."""
        async with self._sessions() as session:
            await session.execute(
                update(ActionItemRow)
                .where(ActionItemRow.id == item_id, ActionItemRow.postmortem_id == postmortem_id)
                .values(ticket_tracker=tracker, ticket_key=key, ticket_url=url, updated_at=now)
            )
            await session.commit()

    async def sync_item_status(self, postmortem_id: str, item_id: str, status: ActionItemStatus, now: datetime) -> bool:
        """The item follows its ticket; a person's stale If-Match then gets 412, never a silent overwrite."""
        done = status in (ActionItemStatus.COMPLETED, ActionItemStatus.WONT_DO)
        async with self._sessions() as session:
            result = await session.execute(
                update(ActionItemRow)
                .where(
                    ActionItemRow.id == item_id,
                    ActionItemRow.postmortem_id == postmortem_id,
                    ActionItemRow.status != status.value,
                )
                .values(
                    status=status.value,
                    version=ActionItemRow.version + 1,
                    updated_at=now,
                    completed_at=now if done else None,
                )
            )
            await session.commit()
            return bool(result.rowcount)

    async def item_for_ticket(self, tracker: str, key: str) -> tuple[str, str] | None:
        """(post-mortem id, item id) of the action item that owns this ticket."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ActionItemRow.postmortem_id, ActionItemRow.id).where(
                        ActionItemRow.ticket_tracker == tracker, ActionItemRow.ticket_key == key
                    )
                )
            ).first()
            return (row[0], row[1]) if row else None

    @staticmethod
    def _items_where(
        query: Any,
        *,
        status: ActionItemStatus | None,
        owner: str | None,
        priority: Priority | None,
        team: str | None,
        due_from: date | None,
        due_to: date | None,
        overdue_on: date | None,
        viewer: Reader | None,
    ) -> Any:
        query = query.join(PostmortemRow, PostmortemRow.id == ActionItemRow.postmortem_id).where(visible_to(viewer))
        if status:
            query = query.where(ActionItemRow.status == status.value)
        if owner:
            query = query.where(ActionItemRow.owner == owner)
        if priority:
            query = query.where(ActionItemRow.priority == priority.value)
        if team:
            query = query.where(PostmortemRow.team == team)
        if due_from:
            query = query.where(ActionItemRow.due_date >= due_from)
        if due_to:
            query = query.where(ActionItemRow.due_date <= due_to)
        if overdue_on:
            query = query.where(_overdue(overdue_on))
        return query

    async def action_items(
        self,
        *,
        status: ActionItemStatus | None = None,
        owner: str | None = None,
        priority: Priority | None = None,
        team: str | None = None,
        due_from: date | None = None,
        due_to: date | None = None,
        overdue_on: date | None = None,
        viewer: Reader | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[tuple[str, str | None, ActionItem, str]]:
        """Action items across reports, with their report's id, team and title: only of reports `viewer` may see.

        Ordered by due date (none last), then by creation and id; `limit`/`offset` read one page only.
        """
        query = self._items_where(
            select(ActionItemRow, PostmortemRow.team, PostmortemRow.title),
            status=status,
            owner=owner,
            priority=priority,
            team=team,
            due_from=due_from,
            due_to=due_to,
            overdue_on=overdue_on,
            viewer=viewer,
        )
        query = query.order_by(
            ActionItemRow.due_date.is_(None), ActionItemRow.due_date, ActionItemRow.created_at, ActionItemRow.id
        )
        if limit is not None:
            query = query.limit(limit).offset(offset)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            return [(row[0].postmortem_id, row[1], item_model(row[0]), row[2]) for row in rows]

    async def count_action_items(
        self,
        *,
        today: date,
        status: ActionItemStatus | None = None,
        owner: str | None = None,
        priority: Priority | None = None,
        team: str | None = None,
        due_from: date | None = None,
        due_to: date | None = None,
        overdue_on: date | None = None,
        viewer: Reader | None = None,
    ) -> tuple[int, int]:
        """How many items `action_items` would return with these filters, and how many of them are overdue `today`."""
        query = self._items_where(
            select(func.count(), func.coalesce(func.sum(case((_overdue(today), 1), else_=0)), 0)).select_from(
                ActionItemRow
            ),
            status=status,
            owner=owner,
            priority=priority,
            team=team,
            due_from=due_from,
            due_to=due_to,
            overdue_on=overdue_on,
            viewer=viewer,
        )
        async with self._sessions() as session:
            total, overdue = (await session.execute(query)).one()
            return int(total), int(overdue)

    @staticmethod
    async def _touch(session: Any, postmortem_id: str, now: datetime) -> None:
        await session.execute(update(PostmortemRow).where(PostmortemRow.id == postmortem_id).values(updated_at=now))
