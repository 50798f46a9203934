"""The post-mortem document store: reports, their incidents and action items.

Edits use optimistic concurrency: every write names the version it read, and a stale write is
refused instead of silently overwriting someone else's edit.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import selectinload

from postmortem.models import (
    ActionItem,
    ActionItemStatus,
    CauseCategory,
    Incident,
    KeyMetrics,
    Language,
    PolicyDecision,
    Postmortem,
    Priority,
    Section,
    Status,
    TemplateVariant,
    Visibility,
)
from postmortem.store.tables import ActionItemRow, IncidentRow, PostmortemRow, PostmortemServiceRow
from postmortem.timezones import as_utc


class NotFound(LookupError):
    pass


class VersionConflict(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the stored version is {current}")
        self.current = current


class InvalidCursor(ValueError):
    pass


class IncidentTaken(Exception):
    """The incident already belongs to a post-mortem (each incident has at most one)."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"the incident already belongs to post-mortem {owner}")
        self.owner = owner


class NewPostmortem(BaseModel):
    id: str
    workflow_id: str
    title: str
    status: Status
    team: str | None
    language: Language
    variant: TemplateVariant
    timezone: str
    decision: PolicyDecision | None
    sections: list[Section]
    metrics: KeyMetrics
    incident: Incident
    created_at: datetime


class Viewer(BaseModel):
    """Who is listing: admins see everything, others what the reports' visibility allows."""

    name: str
    team: str | None = None
    admin: bool = False


class PostmortemFilter(BaseModel):
    viewer: Viewer | None = None
    status: Status | None = None
    team: str | None = None
    service: str | None = None
    incident_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


class PostmortemChanges(BaseModel):
    title: str | None = None
    visibility: Visibility | None = None
    author: str | None = None
    cause_category: CauseCategory | None = None
    metrics: KeyMetrics | None = None
    sections: list[Section] | None = None
    language: Language | None = None
    variant: TemplateVariant | None = None
    timezone: str | None = None
    team: str | None = None
    template_name: str | None = None


SORT_COLUMNS = {"created": PostmortemRow.created_at, "updated": PostmortemRow.updated_at}


def _to_model(row: PostmortemRow) -> Postmortem:
    return Postmortem(
        id=row.id,
        title=row.title,
        status=Status(row.status),
        team=row.team,
        services=sorted(service.service for service in row.services),
        language=Language(row.language),
        variant=TemplateVariant(row.variant),
        timezone=row.timezone,
        severity=row.severity,
        decision=PolicyDecision.model_validate(row.decision) if row.decision else None,
        sections=[Section.model_validate(section) for section in row.sections],
        metrics=KeyMetrics.model_validate(row.metrics),
        incidents=[Incident.model_validate(incident.data) for incident in row.incidents],
        action_items=[_item(item) for item in row.action_items],
        workflow_id=row.workflow_id,
        visibility=Visibility(row.visibility or Visibility.ORGANISATION.value),
        author=row.author,
        cause_category=CauseCategory(row.cause_category) if row.cause_category else None,
        template_name=row.template_name,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _item(row: ActionItemRow) -> ActionItem:
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


def encode_cursor(sort_value: datetime, row_id: str) -> str:
    raw = json.dumps([as_utc(sort_value).isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort_value, row_id = json.loads(raw)
        return as_utc(datetime.fromisoformat(sort_value)), str(row_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not one this API returned") from exc


class PostmortemStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    def _load(self) -> Select[tuple[PostmortemRow]]:
        return select(PostmortemRow).options(
            selectinload(PostmortemRow.incidents),
            selectinload(PostmortemRow.services),
            selectinload(PostmortemRow.action_items),
        )

    async def create_if_absent(self, new: NewPostmortem) -> tuple[Postmortem, bool]:
        """Create the report and claim its incident, once; a retry returns what the first call stored."""
        async with self._sessions() as session:
            existing = await self._owner_of(session, new.incident.source.value, new.incident.id)
            if existing is None:
                row = PostmortemRow(
                    id=new.id,
                    title=new.title,
                    status=new.status.value,
                    team=new.team,
                    language=new.language.value,
                    variant=new.variant.value,
                    timezone=new.timezone,
                    severity=new.metrics.highest_severity.value if new.metrics.highest_severity else None,
                    decision=new.decision.model_dump(mode="json") if new.decision else None,
                    sections=[section.model_dump(mode="json") for section in new.sections],
                    metrics=new.metrics.model_dump(mode="json"),
                    workflow_id=new.workflow_id,
                    version=1,
                    created_at=new.created_at,
                    updated_at=new.created_at,
                )
                row.services = [PostmortemServiceRow(service=name) for name in dict.fromkeys(new.metrics.services)]
                row.incidents = [
                    IncidentRow(
                        source=new.incident.source.value,
                        incident_id=new.incident.id,
                        data=new.incident.model_dump(mode="json"),
                        created_at=new.created_at,
                    )
                ]
                session.add(row)
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()  # a concurrent attempt won the race: read what it stored
                else:
                    return await self.get(new.id), True
        owner = await self.owner_of(new.incident.source.value, new.incident.id)
        if owner is None:
            raise NotFound(f"post-mortem {new.id} could not be created")
        return await self.get(owner), False

    async def _owner_of(self, session: Any, source: str, incident_id: str) -> str | None:
        result = await session.execute(
            select(IncidentRow.postmortem_id).where(
                IncidentRow.source == source, IncidentRow.incident_id == incident_id
            )
        )
        return result.scalar_one_or_none()

    async def owner_of(self, source: str, incident_id: str) -> str | None:
        """Which post-mortem an incident belongs to, if any."""
        async with self._sessions() as session:
            return await self._owner_of(session, source, incident_id)

    async def get(self, postmortem_id: str) -> Postmortem:
        async with self._sessions() as session:
            row = (await session.execute(self._load().where(PostmortemRow.id == postmortem_id))).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            return _to_model(row)

    async def list(
        self, filters: PostmortemFilter, *, sort: str = "created", limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Postmortem], str | None]:
        column = SORT_COLUMNS[sort]
        query = self._load()
        viewer = filters.viewer
        if viewer is not None and not viewer.admin:
            allowed = [PostmortemRow.visibility == Visibility.ORGANISATION.value, PostmortemRow.author == viewer.name]
            if viewer.team:
                allowed.append(
                    and_(PostmortemRow.visibility == Visibility.TEAM.value, PostmortemRow.team == viewer.team)
                )
            query = query.where(or_(*allowed))
        if filters.status:
            query = query.where(PostmortemRow.status == filters.status.value)
        if filters.team:
            query = query.where(PostmortemRow.team == filters.team)
        if filters.service:
            query = query.where(
                PostmortemRow.id.in_(
                    select(PostmortemServiceRow.postmortem_id).where(PostmortemServiceRow.service == filters.service)
                )
            )
        if filters.incident_id:
            query = query.where(
                PostmortemRow.id.in_(
                    select(IncidentRow.postmortem_id).where(IncidentRow.incident_id == filters.incident_id)
                )
            )
        if filters.created_from:
            query = query.where(PostmortemRow.created_at >= filters.created_from)
        if filters.created_to:
            query = query.where(PostmortemRow.created_at < filters.created_to)
        if cursor:
            after_value, after_id = decode_cursor(cursor)
            query = query.where(or_(column < after_value, and_(column == after_value, PostmortemRow.id < after_id)))
        query = query.order_by(column.desc(), PostmortemRow.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(query)).scalars())
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(getattr(last, column.key), last.id)
        return [_to_model(row) for row in page], next_cursor

    async def update(
        self, postmortem_id: str, expected_version: int, changes: PostmortemChanges, now: datetime
    ) -> Postmortem:
        values: dict[str, Any] = {
            key: value for key, value in changes.model_dump(exclude_unset=True, mode="json").items()
        }
        if changes.metrics is not None and changes.metrics.highest_severity is not None:
            values["severity"] = changes.metrics.highest_severity.value
        values.update(version=PostmortemRow.version + 1, updated_at=now)
        async with self._sessions() as session:
            result = await session.execute(
                update(PostmortemRow)
                .where(PostmortemRow.id == postmortem_id, PostmortemRow.version == expected_version)
                .values(**values)
            )
            if result.rowcount == 0:
                current = await session.scalar(select(PostmortemRow.version).where(PostmortemRow.id == postmortem_id))
                if current is None:
                    raise NotFound(f"no post-mortem {postmortem_id!r}")
                raise VersionConflict(current)
            await session.commit()
        return await self.get(postmortem_id)

    async def set_status(self, postmortem_id: str, status: Status, now: datetime) -> Postmortem:
        """Lifecycle writes come from the workflow only; they do not conflict with text edits."""
        async with self._sessions() as session:
            result = await session.execute(
                update(PostmortemRow)
                .where(PostmortemRow.id == postmortem_id)
                .values(status=status.value, updated_at=now)
            )
            if result.rowcount == 0:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            await session.commit()
        return await self.get(postmortem_id)

    async def delete(self, postmortem_id: str) -> None:
        async with self._sessions() as session:
            result = await session.execute(delete(PostmortemRow).where(PostmortemRow.id == postmortem_id))
            if result.rowcount == 0:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            await session.commit()

    async def link_incident(self, postmortem_id: str, incident: Incident, now: datetime) -> None:
        """Attach one more incident; the unique key per incident makes a second owner impossible."""
        async with self._sessions() as session:
            if await session.get(PostmortemRow, postmortem_id) is None:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            owner = await self._owner_of(session, incident.source.value, incident.id)
            if owner == postmortem_id:
                return
            if owner is not None:
                raise IncidentTaken(owner)
            session.add(
                IncidentRow(
                    postmortem_id=postmortem_id,
                    source=incident.source.value,
                    incident_id=incident.id,
                    data=incident.model_dump(mode="json"),
                    created_at=now,
                )
            )
            try:
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                raise IncidentTaken(await self.owner_of(incident.source.value, incident.id) or "another") from exc

    async def replace_incident(self, postmortem_id: str, incident: Incident) -> None:
        """A later delivery for a linked incident (e.g. its resolve) refreshes what we know of it."""
        async with self._sessions() as session:
            await session.execute(
                update(IncidentRow)
                .where(
                    IncidentRow.postmortem_id == postmortem_id,
                    IncidentRow.source == incident.source.value,
                    IncidentRow.incident_id == incident.id,
                )
                .values(data=incident.model_dump(mode="json"))
            )
            await session.commit()

    async def set_metrics(self, postmortem_id: str, metrics: KeyMetrics, now: datetime) -> None:
        """Recomputed key metrics (a system write: no edit conflict, but services are kept in step)."""
        async with self._sessions() as session:
            await session.execute(
                update(PostmortemRow)
                .where(PostmortemRow.id == postmortem_id)
                .values(
                    metrics=metrics.model_dump(mode="json"),
                    updated_at=now,
                    severity=metrics.highest_severity.value if metrics.highest_severity else None,
                )
            )
            await session.execute(
                delete(PostmortemServiceRow).where(PostmortemServiceRow.postmortem_id == postmortem_id)
            )
            for name in dict.fromkeys(metrics.services):
                session.add(PostmortemServiceRow(postmortem_id=postmortem_id, service=name))
            await session.commit()

    # Action items ---------------------------------------------------------------------------

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
            return _item(row)

    async def get_action_item(self, postmortem_id: str, item_id: str) -> tuple[ActionItem, int]:
        async with self._sessions() as session:
            row = await session.get(ActionItemRow, item_id)
            if row is None or row.postmortem_id != postmortem_id:
                raise NotFound(f"no action item {item_id!r} in post-mortem {postmortem_id!r}")
            return _item(row), row.version

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
    ) -> list[tuple[str, str | None, ActionItem]]:
        """Action items across reports, with their report's id and team."""
        query = select(ActionItemRow, PostmortemRow.team).join(
            PostmortemRow, PostmortemRow.id == ActionItemRow.postmortem_id
        )
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
            query = query.where(
                ActionItemRow.due_date < overdue_on,
                ActionItemRow.status.in_([ActionItemStatus.OPEN.value, ActionItemStatus.IN_PROGRESS.value]),
            )
        query = query.order_by(ActionItemRow.due_date.is_(None), ActionItemRow.due_date, ActionItemRow.created_at)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            return [(row[0].postmortem_id, row[1], _item(row[0])) for row in rows]

    @staticmethod
    async def _touch(session: Any, postmortem_id: str, now: datetime) -> None:
        await session.execute(update(PostmortemRow).where(PostmortemRow.id == postmortem_id).values(updated_at=now))
