"""The full-text index of the reports and the ranking of similar ones, on each database's own search.

`postmortem_search` (migration 0015) holds each report's prepared words per weighted column
(`postmortem.review.similarity.document`): on PostgreSQL a generated, weighted `tsvector` under a
GIN index, ranked by `ts_rank`; on SQLite an FTS5 table ranked by `bm25` with matching column
weights. `reindex` rewrites one report's row and runs inside the transaction of every write of the
report (PostmortemStore), so the index is never behind the document; a report's alerts are the
`alert_fired` entries of its timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, String, and_, delete, insert, or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from postmortem.evidence.models import EntryKind
from postmortem.models import CauseCategory, Postmortem, Status, Visibility
from postmortem.review import similarity
from postmortem.store.tables import PostmortemRow, PostmortemServiceRow, SimilarRow, TimelineEntryRow

MAX_ALERTS = 50
# bm25 weights per FTS5 column (postmortem_id, title, services, alerts, cause, body), in proportion to
# PostgreSQL's ts_rank defaults for the weights A (services) 1.0, B (alerts, cause) 0.4, C (title)
# 0.2, D (root cause) 0.1.
_BM25 = "bm25(postmortem_search, 0.0, 2.0, 10.0, 4.0, 4.0, 1.0)"


@dataclass(frozen=True)
class Match:
    id: str
    score: float
    services: list[str]
    cause_category: CauseCategory | None
    created_at: datetime


def _reads(postmortem_id: str) -> tuple[Any, Any, Any]:
    report = select(PostmortemRow.title, PostmortemRow.sections, PostmortemRow.cause_category).where(
        PostmortemRow.id == postmortem_id
    )
    services = select(PostmortemServiceRow.service).where(PostmortemServiceRow.postmortem_id == postmortem_id)
    alerts = (
        select(TimelineEntryRow.text)
        .where(TimelineEntryRow.postmortem_id == postmortem_id, TimelineEntryRow.kind == EntryKind.ALERT_FIRED.value)
        .order_by(TimelineEntryRow.at)
        .limit(MAX_ALERTS)
    )
    return report, services, alerts


def _writes(postmortem_id: str, found: Any, services: list[str], alerts: list[str]) -> list[Any]:
    clear = text("DELETE FROM postmortem_search WHERE postmortem_id = :id").bindparams(id=postmortem_id)
    if found is None:
        return [clear]
    title, sections, cause = found
    root = next((s.get("body", "") for s in sections or [] if s.get("key") == "root_cause"), "")
    doc = similarity.document(title=title, services=services, alerts=alerts, cause=cause, root_cause=root)
    add = text(
        "INSERT INTO postmortem_search (postmortem_id, title, services, alerts, cause, body) "
        "VALUES (:id, :title, :services, :alerts, :cause, :body)"
    ).bindparams(
        id=postmortem_id, title=doc.title, services=doc.services, alerts=doc.alerts, cause=doc.cause, body=doc.body
    )
    return [clear, add]


async def reindex(session: AsyncSession, postmortem_id: str) -> None:
    """Rewrite one report's index row from what `session` sees (call it before the commit)."""
    report, services, alerts = _reads(postmortem_id)
    found = (await session.execute(report)).one_or_none()
    names = list((await session.execute(services)).scalars())
    texts = list((await session.execute(alerts)).scalars())
    for statement in _writes(postmortem_id, found, names, texts):
        await session.execute(statement)


def reindex_all(connection: Connection) -> None:
    """Index every report (the migration that adds the index)."""
    for postmortem_id in list(connection.execute(select(PostmortemRow.id)).scalars()):
        report, services, alerts = _reads(postmortem_id)
        found = connection.execute(report).one_or_none()
        names = list(connection.execute(services).scalars())
        texts = list(connection.execute(alerts).scalars())
        for statement in _writes(postmortem_id, found, names, texts):
            connection.execute(statement)


def _sqlite_match(query: similarity.Query) -> str:
    def group(columns: str, tokens: list[str]) -> str:
        return f"{{{columns}}} : (" + " OR ".join(f'"{token}"' for token in tokens) + ")"

    parts = []
    if query.services:
        parts.append(group("services", query.services))
    if query.alerts:
        parts.append(group("alerts", query.alerts))
    if query.cause:
        parts.append(group("cause", query.cause))
    if query.text:
        parts.append(group("title body", query.text))
    return " OR ".join(parts)


def _postgres_query(query: similarity.Query) -> str:
    terms = (
        [f"{t}:A" for t in query.services]
        + [f"{t}:B" for t in query.alerts + query.cause]
        + [f"{t}:CD" for t in query.text]
    )
    return " | ".join(terms)


def _ranked(dialect: str, query: similarity.Query) -> Any:
    """(postmortem_id, score) of every indexed report that matches, higher scores more alike."""
    if dialect == "postgresql":
        ranked = text(
            "SELECT postmortem_id, ts_rank(document, to_tsquery('simple', :q)) AS score "
            "FROM postmortem_search WHERE document @@ to_tsquery('simple', :q)"
        ).bindparams(q=_postgres_query(query))
    else:
        ranked = text(
            f"SELECT postmortem_id, -{_BM25} AS score FROM postmortem_search WHERE postmortem_search MATCH :q"
        ).bindparams(q=_sqlite_match(query))
    return ranked.columns(postmortem_id=String, score=Float).subquery("ranked")


class SimilarityStore:
    def __init__(self, sessions: async_sessionmaker, dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect

    async def alerts(self, postmortem_id: str) -> list[str]:
        async with self._sessions() as session:
            return list((await session.execute(_reads(postmortem_id)[2])).scalars())

    async def find(
        self,
        pm: Postmortem,
        *,
        limit: int = similarity.MAX_SIMILAR,
        created_before: datetime | None = None,
        created_after: datetime | None = None,
        readers_only: bool = True,
    ) -> list[Match]:
        """The reports most like `pm`, best first: those its readers may see (`similarity.may_list`),
        or, for the system's own judgement (`readers_only=False`, the 90-day verdict), all of them."""
        query = similarity.query(pm, await self.alerts(pm.id))
        if query.empty:
            return []
        ranked = _ranked(self._dialect, query)
        audience = [PostmortemRow.visibility == Visibility.ORGANISATION.value]
        if not readers_only:
            audience = [PostmortemRow.id.is_not(None)]
        elif pm.visibility == Visibility.TEAM and pm.team is not None:
            audience.append(and_(PostmortemRow.visibility == Visibility.TEAM.value, PostmortemRow.team == pm.team))
        statement = (
            select(PostmortemRow.id, ranked.c.score, PostmortemRow.cause_category, PostmortemRow.created_at)
            .join(ranked, ranked.c.postmortem_id == PostmortemRow.id)
            .where(PostmortemRow.id != pm.id, PostmortemRow.status != Status.SKIPPED.value, or_(*audience))
            .order_by(ranked.c.score.desc(), PostmortemRow.created_at.desc(), PostmortemRow.id)
            .limit(limit)
        )
        if created_before is not None:
            statement = statement.where(PostmortemRow.created_at < created_before)
        if created_after is not None:
            statement = statement.where(PostmortemRow.created_at > created_after)
        async with self._sessions() as session:
            rows = list((await session.execute(statement)).all())
            ids = [row[0] for row in rows]
            services: dict[str, list[str]] = {found: [] for found in ids}
            if ids:
                listed = select(PostmortemServiceRow.postmortem_id, PostmortemServiceRow.service).where(
                    PostmortemServiceRow.postmortem_id.in_(ids)
                )
                for owner, name in (await session.execute(listed)).all():
                    services[owner].append(name)
        return [
            Match(
                id=found,
                score=float(score),
                services=sorted(services[found]),
                cause_category=CauseCategory(cause) if cause else None,
                created_at=created_at,
            )
            for found, score, cause, created_at in rows
        ]

    async def link(self, pm: Postmortem) -> list[Match]:
        """Rank `pm`'s similar past reports and keep them on it (replacing what an earlier run kept)."""
        matches = await self.find(pm, created_before=pm.created_at)
        async with self._sessions() as session:
            await session.execute(delete(SimilarRow).where(SimilarRow.postmortem_id == pm.id))
            if matches:
                await session.execute(
                    insert(SimilarRow),
                    [
                        {"postmortem_id": pm.id, "similar_id": m.id, "rank": rank, "score": m.score}
                        for rank, m in enumerate(matches)
                    ],
                )
            await session.commit()
        return matches
