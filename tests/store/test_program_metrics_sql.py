"""The figures `/api/metrics` and `/insights` count in SQL are those of `review.program_metrics` over the same reports.

A store on each database is filled with varied reports (every status, teams blank and missing, time
zones other than UTC, publications before and after the close, several follow-up checks with every
kind of verdict, private reports), then each filter's SQL figures are compared with the Python
computation over the reports loaded one by one, as `/api/metrics` used to do.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

from postmortem.models import ActionItemStatus, CauseCategory, Priority, Status, Visibility
from postmortem.review.lifecycle import Review, ReviewerState, Transition
from postmortem.review.program_metrics import MetricsInput, over_time, program_metrics
from postmortem.review.visibility import Reader
from postmortem.store.listing import PostmortemFilter
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
TEAMS = [None, "", "payments", "search", "Ärger"]
SERVICES = ["api", "db", "cache", "queue", "edge", "auth", "mail", "search", "billing", "cdn", "dns", "web"]
VERDICTS: list[object] = [{"worked": False}, {"worked": True}, {}, {"other": 1}, None, "missing", {"worked": None}]
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))]


async def fill(store: Store, count: int, seed: int = 15) -> None:
    rng = random.Random(seed)
    for n in range(count):
        created = NOW - timedelta(days=rng.randint(0, 700), seconds=rng.randint(0, 86_400))
        if n % 9 == 0:
            created = NOW - timedelta(days=3)  # the same instant for several: ties in the order
        event = pagerduty_event(f"PSQL{n:04d}")
        pm, _ = await store.postmortems.create_if_absent(
            new_postmortem(event.incident, team=rng.choice(TEAMS), created_at=created)
        )
        started = created - timedelta(hours=rng.randint(0, 2000))
        closed = started + timedelta(minutes=rng.randint(1, 600), microseconds=rng.randint(0, 999_999))
        metrics = pm.metrics.model_copy(
            update={
                "started_at": None if n % 7 == 0 else started.astimezone(rng.choice(ZONES)),
                "closed_at": None if n % 11 == 0 else closed.astimezone(rng.choice(ZONES)),
                "time_to_detect_seconds": None if n % 5 == 0 else rng.randint(0, 5000),
                "time_to_resolve_seconds": None if n % 6 == 0 else rng.randint(60, 90_000),
                "services": rng.sample(SERVICES, rng.randint(0, 4)),
            }
        )
        await store.postmortems.set_metrics(pm.id, metrics, NOW)
        visibility = rng.choice([Visibility.ORGANISATION, Visibility.ORGANISATION, Visibility.TEAM, Visibility.PRIVATE])
        cause = rng.choice([None, *CauseCategory])
        pm = await store.postmortems.get(pm.id)
        await store.postmortems.update(
            pm.id,
            pm.version,
            PostmortemChanges(
                visibility=visibility, author=rng.choice(["ann@example.com", "bob@example.com"]), cause_category=cause
            ),
            NOW,
        )
        status = rng.choice(
            [Status.DRAFT, Status.IN_REVIEW, Status.PUBLISHED, Status.PUBLISHED, Status.ARCHIVED, Status.SKIPPED]
        )
        history = [
            Transition(
                action="submit",
                by="ann",
                at=closed + timedelta(hours=1),
                from_status=Status.DRAFT,
                to_status=Status.IN_REVIEW,
            )
        ]
        if status in (Status.PUBLISHED, Status.ARCHIVED) or n % 8 == 0:
            offset = timedelta(hours=rng.uniform(-5, 200))
            history.append(
                Transition(
                    action="approve",
                    by="bob",
                    at=closed + offset,
                    from_status=Status.IN_REVIEW,
                    to_status=Status.PUBLISHED,
                )
            )
            history.append(
                Transition(
                    action="approve",
                    by="bob",
                    at=closed + offset + timedelta(days=3),
                    from_status=Status.DRAFT,
                    to_status=Status.PUBLISHED,
                )
            )
        reviewers = [ReviewerState(reviewer="Rita@Example.com")] if n % 4 == 0 else []
        await store.review.save(pm.id, Review(status=status, history=history, reviewers=reviewers), NOW)
        for _ in range(rng.randint(0, 4)):
            due = rng.choice([None, NOW.date() + timedelta(days=rng.randint(-60, 60))])
            item = await store.postmortems.add_action_item(
                pm.id,
                description="fix",
                owner=rng.choice([None, "ann@example.com"]),
                due_date=due,
                priority=rng.choice(list(Priority)),
                status=rng.choice([ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS]),
                now=NOW,
            )
            final = rng.choice(list(ActionItemStatus))
            if final != item.status:
                done_at = datetime.combine(due or date(2026, 1, 1), datetime.min.time(), UTC) + timedelta(
                    hours=rng.choice([-30, -1, 0, 23, 25, 48])
                )
                await store.postmortems.sync_item_status(pm.id, item.id, final, done_at)
        for day in rng.sample([30, 60, 90], rng.randint(0, 3)):
            verdict = rng.choice(VERDICTS)
            data: dict[str, object] = {"open_items": 1}
            if verdict != "missing":
                data["verdict"] = verdict
            await store.follow_ups.record(pm.id, day, data, NOW)


async def python_figures(store: Store, filters: PostmortemFilter) -> list[MetricsInput]:
    """Every report `filters` lets through with its review and checks: what `/api/metrics` loaded before."""
    reports: list[MetricsInput] = []
    cursor = None
    while True:
        page, cursor = await store.postmortems.list(filters, limit=200, cursor=cursor)
        for pm in page:
            reports.append((pm, await store.review.get(pm.id), await store.follow_ups.list(pm.id)))
        if cursor is None:
            return reports


FILTERS = [
    PostmortemFilter(),
    PostmortemFilter(viewer=Reader("ann@example.com")),
    PostmortemFilter(viewer=Reader("rita@example.com")),
    PostmortemFilter(viewer=Reader("mate@example.com", team="payments")),
    PostmortemFilter(team="payments"),
    PostmortemFilter(service="db"),
    PostmortemFilter(created_from=NOW - timedelta(days=200), created_to=NOW - timedelta(days=20)),
    PostmortemFilter(team="nobody"),
]


async def test_sql_figures_equal_the_python_ones(any_store: Store) -> None:
    await fill(any_store, 90)
    for filters in FILTERS:
        reports = await python_figures(any_store, filters)
        expected = program_metrics(reports, NOW)
        got = await any_store.metrics.program(filters, NOW)
        assert got.model_dump() == expected.model_dump(), filters
        assert list(got.cause_categories) == list(expected.cause_categories)  # the order too
        assert list(got.most_affected_services) == list(expected.most_affected_services)
        labels, monthly = over_time(reports, NOW, 18)
        got_labels, got_monthly = await any_store.metrics.monthly(filters, NOW, 18)
        assert got_labels == labels
        for label, mine, theirs in zip(labels, got_monthly, monthly, strict=True):
            for field in (
                "postmortems_created",
                "completion_rate",
                "time_to_detect_seconds",
                "time_to_resolve_seconds",
                "action_items_completed_on_time_percent",
                "recurrence_rate",
                "mean_hours_resolution_to_publish",
                "action_items_overdue",
                "team_completion_rates",
            ):
                assert getattr(mine, field) == getattr(theirs, field), (label, field)


async def test_private_reports_move_no_figure(any_store: Store) -> None:
    await fill(any_store, 30, seed=3)
    outsider = PostmortemFilter(viewer=Reader("eve@example.com"))
    everyone = await any_store.metrics.program(PostmortemFilter(), NOW)
    seen = await any_store.metrics.program(outsider, NOW)
    assert seen.postmortems_created < everyone.postmortems_created
    visible = await python_figures(any_store, outsider)
    assert all(pm.visibility == Visibility.ORGANISATION for pm, _, _ in visible)
    assert seen == program_metrics(visible, NOW)


async def test_an_empty_store_has_no_figures(any_store: Store) -> None:
    assert await any_store.metrics.program(PostmortemFilter(), NOW) == program_metrics([], NOW)
    assert await any_store.metrics.monthly(PostmortemFilter(), NOW, 18) == ([], [])


async def test_board_pages_and_totals_are_the_full_list_s(any_store: Store) -> None:
    await fill(any_store, 40, seed=7)
    viewer = Reader("ann@example.com")
    for overdue_on in (None, NOW.date()):
        everything = await any_store.postmortems.action_items(viewer=viewer, overdue_on=overdue_on)
        pages = []
        for offset in range(0, len(everything) + 7, 7):
            pages += await any_store.postmortems.action_items(
                viewer=viewer, overdue_on=overdue_on, limit=7, offset=offset
            )
        assert [item.id for _, _, item, _ in pages] == [item.id for _, _, item, _ in everything]
        overdue = sum(
            1
            for _, _, item, _ in everything
            if item.due_date
            and item.due_date < NOW.date()
            and item.status in (ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS)
        )
        total = await any_store.postmortems.count_action_items(today=NOW.date(), viewer=viewer, overdue_on=overdue_on)
        assert total == (len(everything), overdue)
    assert len(everything) < len(await any_store.postmortems.action_items())  # private reports' items left out


async def test_migration_0021_fills_the_metric_columns_of_reports_stored_before_it(any_store: Store) -> None:
    """The figures read plain columns since 0021; a store from before has them filled by the migration."""
    from alembic import command
    from sqlalchemy import func, select

    from postmortem.store.database import alembic_config, migrate
    from postmortem.store.tables import PostmortemRow

    await fill(any_store, 60, seed=20)
    before = await any_store.metrics.program(PostmortemFilter(), NOW)
    before_months = await any_store.metrics.monthly(PostmortemFilter(), NOW, 18)
    async with any_store.engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0020"))
    await migrate(any_store.engine)
    async with any_store.engine.connect() as connection:
        months = await connection.scalar(select(func.count()).where(PostmortemRow.month.is_not(None)))
        judged = await connection.scalar(select(func.count()).where(PostmortemRow.recurred.is_not(None)))
    assert months == 60 and judged, (months, judged)
    assert (await any_store.metrics.program(PostmortemFilter(), NOW)).model_dump() == before.model_dump()
    assert await any_store.metrics.monthly(PostmortemFilter(), NOW, 18) == before_months
