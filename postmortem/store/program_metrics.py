"""`/api/metrics` and the metrics page in SQL: the figures of `review.program_metrics`, counted by the database.

`review/program_metrics.py` says what each figure means, over reports in memory; this module computes
the same figures with aggregate queries, so a store with years of history is never loaded into Python
(tests compare the two on both databases). Everything is SQLAlchemy Core over the same conditions as
the lists (`listing.filter_conditions`: the caller's visibility first), so a report hidden from the
caller moves none of their figures.

Means are `AVG`, medians the middle row(s) by `row_number()` (window functions: SQLite and PostgreSQL
alike), so no list of values leaves the database. The inputs are plain columns the store keeps beside
the JSON documents (`store/metric_columns.py`): no JSON is parsed per row. The one expression the two
databases spell differently (a difference of timestamps in hours) is `_Sql` below.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from postmortem.models import ActionItemStatus, Status
from postmortem.review.program_metrics import DONE, ProgramMetrics, Summary, empty_metrics, months_between
from postmortem.store.listing import PostmortemFilter, filter_conditions
from postmortem.store.tables import ActionItemRow, PostmortemRow, PostmortemServiceRow

__all__ = ["MetricsStore"]

NO_TEAM = "—"
OPEN = (ActionItemStatus.OPEN.value, ActionItemStatus.IN_PROGRESS.value)
DONE_VALUES = tuple(status.value for status in DONE)


class _Sql(ColumnElement[Any]):
    """One expression, spelled per dialect: `templates[dialect]` with `{0}`, `{1}`… the compiled clauses.

    The templates are this module's constants (never input); values travel as bound parameters.
    """

    inherit_cache = False

    def __init__(self, type_: TypeEngine[Any], templates: dict[str, str], *clauses: ColumnElement[Any]) -> None:
        self.type = type_
        self.templates = templates
        self.clauses = clauses

    def get_children(self, **kw: Any) -> tuple[ColumnElement[Any], ...]:
        return self.clauses

    @property
    def _from_objects(self) -> list[Any]:
        return [table for clause in self.clauses for table in clause._from_objects]


@compiles(_Sql)
def _compile(element: _Sql, compiler: SQLCompiler, **kw: Any) -> str:
    return element.templates[compiler.dialect.name].format(*(compiler.process(c, **kw) for c in element.clauses))


# Hours from the incident's close to the first publication (NULL when either is missing).
_HOURS_TO_PUBLISH = _Sql(
    Float(),
    {
        "sqlite": "((julianday({0}) - julianday({1})) * 24.0)",
        "postgresql": "(EXTRACT(EPOCH FROM ({0} - {1})) / 3600.0)",
    },
    PostmortemRow.__table__.c.published_at,
    PostmortemRow.__table__.c.closed_at,
)

# The month (UTC, "YYYY-MM") the incident started in; a backfilled report counts in its incident's month.
MONTH = PostmortemRow.__table__.c.month


def _utc_date(column: ColumnElement[Any]) -> _Sql:
    return _Sql(Date(), {"sqlite": "date({0})", "postgresql": "CAST(({0} AT TIME ZONE 'UTC') AS DATE)"}, column)


_TEAM = case((or_(PostmortemRow.team.is_(None), PostmortemRow.team == ""), NO_TEAM), else_=PostmortemRow.team)
_TTD = PostmortemRow.__table__.c.time_to_detect_seconds
_TTR = PostmortemRow.__table__.c.time_to_resolve_seconds


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


class _Grouping:
    """The figures over all the reports (`key` None) or per value of `key` (the month)."""

    def __init__(self, key: ColumnElement[Any] | None, conditions: list[ColumnElement[bool]]) -> None:
        self.key = key
        self.conditions = [*conditions, PostmortemRow.status != Status.SKIPPED.value]

    def column(self) -> ColumnElement[Any]:
        return (self.key if self.key is not None else literal_column("''")).label("k")

    def grouped(self, query: Any, *more: str) -> Any:  # a Select of any row shape
        """`query` over the considered reports, grouped by the key and `more` (output columns' labels:
        PostgreSQL would not match an expression with bound values to its copy in GROUP BY)."""
        keys = ["k"] if self.key is not None else []
        return query.where(*self.conditions).group_by(*(literal_column(name) for name in (*keys, *more)))


class MetricsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def program(self, filters: PostmortemFilter, today: datetime) -> ProgramMetrics:
        """The figures of every report `filters` lets through (`review.program_metrics.program_metrics`)."""
        grouping = _Grouping(None, filter_conditions(filters))
        figures = await self._figures(grouping, today, trends=True)
        return figures.get("", empty_metrics())

    async def monthly(
        self, filters: PostmortemFilter, today: datetime, months: int
    ) -> tuple[list[str], list[ProgramMetrics]]:
        """The newest `months` months the incidents started in (gaps included) and each month's figures."""
        conditions = filter_conditions(filters)
        async with self._engine.connect() as connection:
            first, last = (await connection.execute(select(func.min(MONTH), func.max(MONTH)).where(*conditions))).one()
        if first is None:
            return [], []
        labels = months_between(first, last)[-months:]
        grouping = _Grouping(MONTH, [*conditions, MONTH >= labels[0]])
        figures = await self._figures(grouping, today, trends=False)
        return labels, [figures.get(label, empty_metrics()) for label in labels]

    async def _figures(self, g: _Grouping, today: datetime, *, trends: bool) -> dict[str, ProgramMetrics]:
        k = g.column()
        done = PostmortemRow.status.in_(DONE_VALUES)
        hours = _HOURS_TO_PUBLISH
        published_hours = case((and_(done, hours >= 0), hours))
        # One pass over the reports: counts per team, the hours to publish (summed: a mean over teams
        # is their sum over their count), the latest follow-ups' verdicts.
        reports = g.grouped(
            select(
                k,
                _TEAM.label("t"),
                func.count(),
                _count_if(done),
                func.sum(published_hours),
                func.count(published_hours),
                _count_if(PostmortemRow.recurred.is_not(None)),
                _count_if(PostmortemRow.recurred == 1),
            ),
            "t",
        )
        with_due = and_(ActionItemRow.due_date.is_not(None), ActionItemRow.status == ActionItemStatus.COMPLETED.value)
        items = g.grouped(
            select(
                k,
                func.count(ActionItemRow.id),
                _count_if(with_due),
                _count_if(
                    and_(
                        with_due,
                        ActionItemRow.completed_at.is_not(None),
                        _utc_date(ActionItemRow.__table__.c.completed_at) <= ActionItemRow.due_date,
                    )
                ),
                _count_if(
                    and_(
                        ActionItemRow.due_date.is_not(None),
                        ActionItemRow.due_date < today.date(),
                        ActionItemRow.status.in_(OPEN),
                    )
                ),
            ).select_from(PostmortemRow.__table__.join(ActionItemRow, ActionItemRow.postmortem_id == PostmortemRow.id))
        )
        async with self._engine.connect() as connection:
            counts: dict[str, dict[str, tuple[int, int]]] = {}
            publish_hours: dict[str, tuple[float, int]] = {}
            verdicts: dict[str, tuple[int, int]] = {}
            for key, team, total, published, hours_sum, hours_n, judged_n, recurred_n in await connection.execute(
                reports
            ):
                counts.setdefault(key, {})[team] = (int(total), int(published))
                summed, n = publish_hours.get(key, (0.0, 0))
                publish_hours[key] = (summed + float(hours_sum or 0), n + int(hours_n))
                judged, recurred = verdicts.get(key, (0, 0))
                verdicts[key] = (judged + int(judged_n), recurred + int(recurred_n))
            item_counts = {row[0]: tuple(int(v) for v in row[1:]) for row in await connection.execute(items)}
            ttd = await self._summaries(connection, g, _TTD)
            ttr = await self._summaries(connection, g, _TTR)
            causes, services = await self._trends(connection, g) if trends else ({}, {})
        figures = {}
        for key, teams in counts.items():
            considered = sum(total for total, _ in teams.values())
            published = sum(done_ for _, done_ in teams.values())
            total_items, due_done, on_time, overdue = item_counts.get(key, (0, 0, 0, 0))
            judged_n, recurred = verdicts.get(key, (0, 0))
            hours_sum, hours_n = publish_hours.get(key, (0.0, 0))
            mean_hours = hours_sum / hours_n if hours_n else None
            figures[key] = ProgramMetrics(
                postmortems_created=considered,
                completion_rate=_rate(published, considered),
                mean_hours_resolution_to_publish=round(float(mean_hours), 1) if mean_hours is not None else None,
                action_items_total=total_items,
                action_items_completed_on_time_percent=round(100 * on_time / due_done, 1) if due_done else None,
                action_items_overdue=overdue,
                time_to_detect_seconds=ttd.get(key, Summary(mean=None, median=None, count=0)),
                time_to_resolve_seconds=ttr.get(key, Summary(mean=None, median=None, count=0)),
                recurrence_rate=_rate(recurred, judged_n),
                cause_categories=causes,
                most_affected_services=services,
                team_completion_rates={team: round(done_ / total, 3) for team, (total, done_) in sorted(teams.items())},
            )
        return figures

    @staticmethod
    async def _summaries(connection: Any, g: _Grouping, value: ColumnElement[Any]) -> dict[str, Summary]:
        """Mean, median and count of `value` per key: the median is the middle row, or the mean of the middle two."""
        partition = [g.key] if g.key is not None else None
        ranked = (
            select(
                g.column(),
                value.label("v"),
                func.row_number().over(partition_by=partition, order_by=value).label("rn"),
                func.count().over(partition_by=partition).label("n"),
            )
            .where(*g.conditions, value.is_not(None))
            .subquery()
        )
        middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
        query = select(
            ranked.c.k,
            func.avg(ranked.c.v),
            func.avg(case((middle, ranked.c.v))),
            func.count(),
        ).group_by(ranked.c.k)
        return {
            key: Summary(mean=round(float(mean), 1), median=round(float(median), 1), count=int(count))
            for key, mean, median, count in await connection.execute(query)
        }

    @staticmethod
    async def _trends(connection: Any, g: _Grouping) -> tuple[dict[str, int], dict[str, int]]:
        """Cause categories and the ten most affected services, most first; a tie in the order the list shows
        the reports (newest first: the first report a value is seen in), as `Counter.most_common` over it."""
        ordered = (
            select(
                PostmortemRow.id,
                PostmortemRow.cause_category,
                func.row_number()
                .over(order_by=(PostmortemRow.created_at.desc(), PostmortemRow.id.desc()))
                .label("pos"),
            )
            .where(*g.conditions)
            .subquery()
        )
        causes = (
            select(ordered.c.cause_category, func.count())
            .where(ordered.c.cause_category.is_not(None), ordered.c.cause_category != "")
            .group_by(ordered.c.cause_category)
            .order_by(func.count().desc(), func.min(ordered.c.pos))
        )
        services = (
            select(PostmortemServiceRow.service, func.count())
            .select_from(ordered.join(PostmortemServiceRow, PostmortemServiceRow.postmortem_id == ordered.c.id))
            .group_by(PostmortemServiceRow.service)
            .order_by(func.count().desc(), func.min(ordered.c.pos), PostmortemServiceRow.service)
            .limit(10)
        )
        by_cause = {cause: int(n) for cause, n in await connection.execute(causes)}
        by_service = {service: int(n) for service, n in await connection.execute(services)}
        return by_cause, by_service


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None
