"""The post-mortem document store: reports and their incidents.

Edits use optimistic concurrency: every write names the version it read, and a stale write is
refused instead of silently overwriting someone else's edit. Every version's text is kept as a
revision, written in the transaction that made it, so what a reviewer approved can be published
even after a later edit. A report's action items are written through the same store
(`action_items.py`, its base class); which reports a listing returns is `listing.py` (its `Viewer`,
`PostmortemFilter` and `InvalidCursor` are importable from here too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from postmortem.models import (
    ActionItemStatus,
    CauseCategory,
    Incident,
    KeyMetrics,
    Language,
    PolicyDecision,
    Postmortem,
    Section,
    SimilarReport,
    Status,
    TemplateVariant,
    Visibility,
)
from postmortem.review.similarity import may_list
from postmortem.store.action_items import ActionItemStore, item_model
from postmortem.store.documents import DocumentWrite, write_in
from postmortem.store.errors import NotFound, VersionConflict
from postmortem.store.listing import (
    InvalidCursor,
    PostmortemFilter,
    Viewer,
    listing_query,
    next_cursor,
)
from postmortem.store.metric_columns import from_metrics
from postmortem.store.similarity import reindex
from postmortem.store.tables import IncidentRow, PostmortemRow, PostmortemServiceRow, RevisionRow, SimilarRow

__all__ = [
    "IncidentTaken",
    "InvalidCursor",
    "NewPostmortem",
    "NotFound",
    "PostmortemChanges",
    "PostmortemFilter",
    "PostmortemStore",
    "VersionConflict",
    "Viewer",
]


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


# What a revision pins: the text people approve. Who may see the report, who owns it, its status,
# services, incidents and action items are the report's current ones whatever version is read.
REVISED = (
    "title",
    "language",
    "variant",
    "timezone",
    "severity",
    "sections",
    "metrics",
    "cause_category",
    "template_name",
    "version",
)


def _revision(row: PostmortemRow) -> RevisionRow:
    """The revision of `row`'s current version, to be written in the transaction that made it."""
    data = {name: getattr(row, name) for name in REVISED} | {"updated_at": row.updated_at.isoformat()}
    return RevisionRow(postmortem_id=row.id, version=row.version, data=data, created_at=row.updated_at)


OPEN = (ActionItemStatus.OPEN.value, ActionItemStatus.IN_PROGRESS.value)


def _similar(pm: Postmortem, links: list[SimilarRow]) -> list[SimilarReport]:
    """The similar reports kept at drafting, as they are now, and only those `pm`'s readers may see."""
    listed = []
    for link in links:
        other = link.other
        if not may_list(pm, Visibility(other.visibility or Visibility.ORGANISATION.value), other.team):
            continue
        listed.append(
            SimilarReport(
                id=other.id,
                title=other.title,
                status=Status(other.status),
                created_at=other.created_at,
                services=sorted(service.service for service in other.services),
                cause_category=CauseCategory(other.cause_category) if other.cause_category else None,
                score=link.score,
                open_action_items=[item.description for item in other.action_items if item.status in OPEN],
            )
        )
    return listed


def _to_model(row: PostmortemRow) -> Postmortem:
    pm = _document(row)
    pm.similar = _similar(pm, row.similar_links)
    return pm


def _document(row: PostmortemRow) -> Postmortem:
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
        action_items=[item_model(item) for item in row.action_items],
        workflow_id=row.workflow_id,
        visibility=Visibility(row.visibility or Visibility.ORGANISATION.value),
        author=row.author,
        cause_category=CauseCategory(row.cause_category) if row.cause_category else None,
        template_name=row.template_name,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _metric_columns(session: AsyncSession, postmortem_id: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The metric columns that go with a new `metrics` document (the month falls back on the report's
    creation); none for a report that is not there (the update then finds nothing either)."""
    created_at = await session.scalar(select(PostmortemRow.created_at).where(PostmortemRow.id == postmortem_id))
    return from_metrics(metrics, created_at) if created_at is not None else {}


class PostmortemStore(ActionItemStore):
    def _load(self) -> Select[PostmortemRow]:
        similar = selectinload(PostmortemRow.similar_links).selectinload(SimilarRow.other)
        return select(PostmortemRow).options(
            selectinload(PostmortemRow.incidents),
            selectinload(PostmortemRow.services),
            selectinload(PostmortemRow.action_items),
            similar.selectinload(PostmortemRow.services),
            similar.selectinload(PostmortemRow.action_items),
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
                    **from_metrics(new.metrics.model_dump(mode="json"), new.created_at),
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
                    await session.flush()
                    session.add(_revision(row))
                    await reindex(session, new.id)
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
        query = listing_query(self._load(), filters, sort=sort, limit=limit, cursor=cursor)
        async with self._sessions() as session:
            rows = list((await session.execute(query)).scalars())
        return [_to_model(row) for row in rows[:limit]], next_cursor(rows, limit, sort)

    async def update(
        self,
        postmortem_id: str,
        expected_version: int,
        changes: PostmortemChanges,
        now: datetime,
        *,
        document: DocumentWrite | None = None,
    ) -> Postmortem:
        """`document`: what the edit does to the co-edited document, written in the same transaction
        (a refused base refuses the edit too: VersionConflict)."""
        values: dict[str, Any] = {
            key: value for key, value in changes.model_dump(exclude_unset=True, mode="json").items()
        }
        if changes.metrics is not None and changes.metrics.highest_severity is not None:
            values["severity"] = changes.metrics.highest_severity.value
        values.update(version=PostmortemRow.version + 1, updated_at=now)
        async with self._sessions() as session:
            if "metrics" in values:
                values.update(await _metric_columns(session, postmortem_id, values["metrics"]))
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
            if document is not None:
                try:
                    await write_in(session, postmortem_id, expected_version + 1, document, now)
                except VersionConflict:
                    await session.rollback()
                    raise
            load = self._load().where(PostmortemRow.id == postmortem_id).execution_options(populate_existing=True)
            row = (await session.execute(load)).scalar_one()
            session.add(_revision(row))
            await reindex(session, postmortem_id)
            await session.commit()
            return _to_model(row)

    async def revision(self, postmortem_id: str, version: int) -> Postmortem:
        """The report with its text as it was at `version` (what a reviewer approved)."""
        async with self._sessions() as session:
            row = (await session.execute(self._load().where(PostmortemRow.id == postmortem_id))).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            current = _to_model(row)
            stored = await session.get(RevisionRow, (postmortem_id, version))
        if stored is None:
            if version == current.version:  # a report from before revisions were kept: its current text
                return current
            raise NotFound(f"post-mortem {postmortem_id!r} has no version {version}")
        return Postmortem.model_validate({**current.model_dump(mode="json"), **stored.data})

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
        document = metrics.model_dump(mode="json")
        async with self._sessions() as session:
            columns = await _metric_columns(session, postmortem_id, document)
            await session.execute(
                update(PostmortemRow)
                .where(PostmortemRow.id == postmortem_id)
                .values(
                    metrics=document,
                    **columns,
                    updated_at=now,
                    severity=metrics.highest_severity.value if metrics.highest_severity else None,
                )
            )
            await session.execute(
                delete(PostmortemServiceRow).where(PostmortemServiceRow.postmortem_id == postmortem_id)
            )
            for name in dict.fromkeys(metrics.services):
                session.add(PostmortemServiceRow(postmortem_id=postmortem_id, service=name))
            await session.flush()
            await reindex(session, postmortem_id)
            await session.commit()
