"""The action items of the reports: added, edited and deleted by people, ticket fields set by the system.

`ActionItemStore` is the base of `PostmortemStore`, so `Store.postmortems` hands out both: an action
item lives and dies with its report, and every write to one touches the report's `updated_at`. Edits
by people use optimistic concurrency (the version they read); ticket writes and ticket-status
syncs are system writes.

Which side wins for a ticketed item's status: the last change. A ticket's webhook is that change as it
happens (`sync_item_status`). A follow-up sync reads the ticket later, so it compares both sides with
what they last agreed on (`agreed_ticket_state`, `agreed_status`: set by a push that succeeded, the
ticket made or found, the item following its ticket): the item changed here since keeps its status and
its ticket is told again; otherwise a ticket that moved since is followed (`which_side`).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.models import TICKET_STATUS, ActionItem, ActionItemStatus, Priority, TicketState
from postmortem.review.visibility import Reader
from postmortem.store.errors import NotFound, VersionConflict
from postmortem.store.listing import visible_to
from postmortem.store.tables import ActionItemRow, PostmortemRow

__all__ = ["ActionItemStore", "Side", "item_model", "which_side"]
# A sync that keeps losing the race with people's edits gives up on the item until the next one.
_SYNC_ATTEMPTS = 5


class Side(StrEnum):
    """What a follow-up sync does with an item whose ticket it just read."""

    SAME = "same"  # nothing: they say the same, or neither moved since they agreed
    TICKET = "ticket"  # the ticket moved since they agreed and the item did not: the item follows it
    OURS = "ours"  # the item changed here since they agreed (its push failed): it keeps its status, pushed again


def which_side(
    ticket: TicketState, status: ActionItemStatus, agreed_ticket: str | None, agreed_status: str | None
) -> Side:
    """The last change wins, as far as a late read can tell: a change made here that never reached the
    ticket is newer than anything the ticket showed at the last agreement, so it stays; the ticket's
    state is taken only when it moved since and the item did not. Nothing agreed yet (a ticket from
    before this rule): the ticket wins, as it always did."""
    if TICKET_STATUS[ticket] == status:
        return Side.SAME
    if agreed_status is not None and status.value != agreed_status:
        return Side.OURS
    return Side.TICKET if agreed_ticket is None or ticket != agreed_ticket else Side.SAME


def _followed(status: ActionItemStatus, now: datetime) -> dict[str, Any]:
    """An item taking its ticket's `status`: a new version, completed now if that status ends it."""
    done = status in (ActionItemStatus.COMPLETED, ActionItemStatus.WONT_DO)
    return {
        "status": status.value,
        "version": ActionItemRow.version + 1,
        "updated_at": now,
        "completed_at": now if done else None,
    }


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
        self,
        postmortem_id: str,
        item_id: str,
        tracker: str,
        key: str,
        url: str,
        now: datetime,
        *,
        state: TicketState | None = None,
    ) -> None:
        """Record the ticket an action item got (a system field: no edit conflict for people). The
        ticket's `state` then is the first agreement: an item whose status differs from it is pushed."""
        agreed = {"agreed_ticket_state": state, "agreed_status": TICKET_STATUS[state].value} if state else {}
        async with self._sessions() as session:
            await session.execute(
                update(ActionItemRow)
                .where(ActionItemRow.id == item_id, ActionItemRow.postmortem_id == postmortem_id)
                .values(ticket_tracker=tracker, ticket_key=key, ticket_url=url, updated_at=now, **agreed)
            )
            await session.commit()

    async def agree(self, postmortem_id: str, item_id: str, ticket: TicketState, status: ActionItemStatus) -> None:
        """A push of `status` succeeded and the ticket then said `ticket`: what both last agreed on. Not
        an edit (no version, no `updated_at`: a push does not make an item any less stalled)."""
        async with self._sessions() as session:
            await session.execute(
                update(ActionItemRow)
                .where(ActionItemRow.id == item_id, ActionItemRow.postmortem_id == postmortem_id)
                .values(agreed_ticket_state=ticket, agreed_status=status.value)
            )
            await session.commit()

    async def sync_item_status(
        self,
        postmortem_id: str,
        item_id: str,
        status: ActionItemStatus,
        now: datetime,
        *,
        ticket: TicketState | None = None,
    ) -> bool:
        """The item follows its ticket (a change there, as it happens: its webhook); a person's stale
        If-Match then gets 412, never a silent overwrite. `ticket`: the state it came from, recorded
        as what both agree on."""
        agreed = {"agreed_ticket_state": ticket, "agreed_status": status.value} if ticket else {}
        mine = (ActionItemRow.id == item_id, ActionItemRow.postmortem_id == postmortem_id)
        async with self._sessions() as session:
            result = await session.execute(
                update(ActionItemRow)
                .where(*mine, ActionItemRow.status != status.value)
                .values(**_followed(status, now), **agreed)
            )
            if not result.rowcount and agreed:  # the item said so already: they agree
                await session.execute(update(ActionItemRow).where(*mine).values(**agreed))
            await session.commit()
            return bool(result.rowcount)

    async def follow_ticket(self, postmortem_id: str, item_id: str, ticket: TicketState, now: datetime) -> Side:
        """A follow-up sync read the ticket's state: the item follows it, or keeps its own (`which_side`).
        `Side.OURS` leaves the push to the caller (then `agree`). Written only over the version read, so a
        person's edit meanwhile is decided again, never overwritten."""
        for _ in range(_SYNC_ATTEMPTS):
            async with self._sessions() as session:
                row = await session.get(ActionItemRow, item_id)
                if row is None or row.postmortem_id != postmortem_id:
                    raise NotFound(f"no action item {item_id!r} in post-mortem {postmortem_id!r}")
                status, version = ActionItemStatus(row.status), row.version
                side = which_side(ticket, status, row.agreed_ticket_state, row.agreed_status)
                if side == Side.OURS:
                    return side
                followed = TICKET_STATUS[ticket] if side == Side.TICKET else status
                values: dict[str, Any] = {"agreed_ticket_state": ticket, "agreed_status": followed.value}
                if side == Side.TICKET:
                    values |= _followed(followed, now)
                elif TICKET_STATUS[ticket] != status:  # neither moved since they agreed: nothing to record
                    return side
                result = await session.execute(
                    update(ActionItemRow)
                    .where(ActionItemRow.id == item_id, ActionItemRow.version == version)
                    .values(**values)
                )
                if result.rowcount:
                    await session.commit()
                    return side
        return Side.SAME  # edited at every attempt: the next sync decides

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
