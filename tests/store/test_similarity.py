"""'Have we seen this before?' on a store seeded with a few hundred reports, on SQLite (FTS5) and
PostgreSQL (ts_rank): the expected neighbours rank first, only past reports the report's readers may
see are listed (each with its open action items), and the index follows every write."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy.engine import Connection

from postmortem.evidence.models import EntryKind, EvidenceSource, TimelineEntry
from postmortem.models import ActionItemStatus, CauseCategory, Priority, Section, Visibility
from postmortem.report.rendering import render_markdown
from postmortem.store.database import alembic_config
from postmortem.store.postmortems import NewPostmortem, PostmortemChanges
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NOISE = 300
SERVICES = [
    "checkout", "search-api", "auth", "inventory", "shipping", "email-gateway", "ledger", "catalog",
    "recommendations", "cdn-edge", "billing-batch", "profile", "notifications", "reporting", "fraud-scoring",
]  # fmt: skip
TOPICS = [
    ("High latency on {s}", "A slow query on the orders table saturated the connection pool"),
    ("{s} returning 503", "A deploy removed a health check and the load balancer drained every node"),
    ("Disk full on {s} hosts", "Log rotation stopped after an agent upgrade and the disks filled"),
    ("Certificate expired for {s}", "The renewal job had no alert and the certificate lapsed"),
    ("Memory leak in {s}", "A cache without eviction grew until the pods were killed"),
    ("{s} timeouts to upstream", "The upstream provider throttled requests during a sale"),
]
CAUSES = list(CauseCategory)


@dataclass
class Seeded:
    target: str
    best: str  # same service, alert, cause and words
    second: str  # same service and cause
    third: str  # same service, one shared word
    private_twin: str  # as alike as `best`, but private
    team_twin: str  # as alike as `best`, visible to its team only
    newer_twin: str  # as alike as `best`, but written after the target
    cause_only: list[str]  # many noise reports share the target's cause and nothing else


async def _report(
    store: Store,
    incident_id: str,
    *,
    title: str,
    services: list[str],
    created_at: datetime,
    root_cause: str = "",
    cause: CauseCategory | None = None,
    visibility: Visibility | None = None,
    team: str | None = None,
    alerts: list[str] = (),  # type: ignore[assignment]
) -> str:
    incident = pagerduty_event(incident_id).incident
    base = _template(incident_id)
    pm_id = base.id
    if alerts:
        await store.evidence.add_entries(
            pm_id,
            [
                TimelineEntry(
                    key=f"alert-{incident_id}-{i}",
                    at=created_at - timedelta(minutes=5),
                    kind=EntryKind.ALERT_FIRED,
                    source=EvidenceSource.ALERTMANAGER,
                    text=f"{name}: error rate above 5% for 10 minutes",
                )
                for i, name in enumerate(alerts)
            ],
        )
    sections = [
        s.model_copy(update={"body": root_cause}) if s.key == "root_cause" else s
        for s in base.sections
        if s.key != "timeline"
    ]
    new = base.model_copy(
        update={
            "title": title,
            "team": team,
            "sections": sections,
            "metrics": base.metrics.model_copy(update={"services": services}),
            "incident": incident,
            "created_at": created_at,
        }
    )
    pm, created = await store.postmortems.create_if_absent(new)
    assert created
    changes = PostmortemChanges()
    if cause:
        changes.cause_category = cause
    if visibility:
        changes.visibility = visibility
    if cause or visibility:
        await store.postmortems.update(pm.id, pm.version, changes, created_at)
    return pm.id


_TEMPLATES: dict[str, NewPostmortem] = {}


def _template(incident_id: str) -> NewPostmortem:
    """One drafted report, re-addressed per incident (drafting 300 reports would time the template)."""
    if "base" not in _TEMPLATES:
        _TEMPLATES["base"] = new_postmortem(pagerduty_event("PBASE").incident, created_at=T0)
    base = _TEMPLATES["base"]
    pm_id = f"pagerduty-{incident_id.lower()}"
    return base.model_copy(update={"id": pm_id, "workflow_id": f"postmortem-{pm_id}"})


async def _seed(store: Store) -> Seeded:
    rng = random.Random(16)
    when = iter(T0 + timedelta(hours=6 * i) for i in range(NOISE + 20))
    cause_only = []
    for i in range(NOISE):
        service = rng.choice(SERVICES)
        title, cause_text = rng.choice(TOPICS)
        cause = rng.choice(CAUSES)
        pm_id = await _report(
            store,
            f"PNOISE{i:04d}",
            title=title.format(s=service),
            services=[service],
            created_at=next(when),
            root_cause=cause_text,
            cause=cause,
            alerts=[f"{service.replace('-', '')}Down"] if i % 3 == 0 else [],
        )
        if cause == CauseCategory.CONFIGURATION:
            cause_only.append(pm_id)
    twin = {
        "title": "Payments API card errors after a configuration push",
        "services": ["payments-api"],
        "root_cause": "A feature flag configuration disabled the card tokenizer",
        "cause": CauseCategory.CONFIGURATION,
        "alerts": ["PaymentsHighErrorRate"],
    }
    best = await _report(store, "PBEST", created_at=next(when), **twin)  # type: ignore[arg-type]
    private_twin = await _report(
        store,
        "PPRIVATE",
        created_at=next(when),
        visibility=Visibility.PRIVATE,
        **twin,  # type: ignore[arg-type]
    )
    team_twin = await _report(
        store,
        "PTEAM",
        created_at=next(when),
        visibility=Visibility.TEAM,
        team="payments",
        **twin,  # type: ignore[arg-type]
    )
    second = await _report(
        store,
        "PSECOND",
        title="Payments API slow responses",
        services=["payments-api"],
        created_at=next(when),
        root_cause="A connection limit set too low",
        cause=CauseCategory.CONFIGURATION,
    )
    third = await _report(
        store,
        "PTHIRD",
        title="Payments API latency during a sale",
        services=["payments-api"],
        created_at=next(when),
        root_cause="Traffic above forecast",
        cause=CauseCategory.CAPACITY,
    )
    target = await _report(
        store,
        "PTARGET",
        title="2025-04-01 Card payments failing after configuration change",
        services=["payments-api"],
        created_at=next(when),
        alerts=["PaymentsHighErrorRate"],
    )
    await store.postmortems.update(
        target, 1, PostmortemChanges(cause_category=CauseCategory.CONFIGURATION), T0 + timedelta(days=365)
    )
    newer_twin = await _report(store, "PNEWER", created_at=next(when), **twin)  # type: ignore[arg-type]
    return Seeded(target, best, second, third, private_twin, team_twin, newer_twin, cause_only)


async def test_have_we_seen_this_before(any_store: Store) -> None:
    """One seeding per database (a few hundred reports), then each behaviour in turn."""
    seeded = await _seed(any_store)
    await _the_expected_neighbours_rank_first(any_store, seeded)
    await _the_index_follows_each_write(any_store, seeded)
    await _a_team_report_also_lists_its_own_teams_reports(any_store, seeded)
    await _the_report_lists_them_with_open_items_as_its_readers_may_see_them(any_store, seeded)


async def _the_expected_neighbours_rank_first(any_store: Store, seeded: Seeded) -> None:
    target = await any_store.postmortems.get(seeded.target)
    matches = await any_store.similarity.link(target)
    ids = [m.id for m in matches]
    assert len(ids) == 5
    assert ids[0] == seeded.best
    assert set(ids[:3]) == {seeded.best, seeded.second, seeded.third}
    assert all(m.score > 0 for m in matches) and [m.score for m in matches] == sorted(
        (m.score for m in matches), reverse=True
    )
    # never the private or team-only twin, never a report written after the target
    assert not {seeded.private_twin, seeded.team_twin, seeded.newer_twin} & set(ids)
    assert matches[3].score < matches[2].score * 0.6  # the rest are far behind


async def _the_report_lists_them_with_open_items_as_its_readers_may_see_them(any_store: Store, seeded: Seeded) -> None:
    now = T0 + timedelta(days=400)
    for description, status in (
        ("Validate flags before a push", ActionItemStatus.OPEN),
        ("Done", ActionItemStatus.COMPLETED),
    ):
        await any_store.postmortems.add_action_item(
            seeded.best, description=description, owner=None, due_date=None, priority=Priority.HIGH,
            status=status, now=now,
        )  # fmt: skip
    await any_store.similarity.link(await any_store.postmortems.get(seeded.target))
    pm = await any_store.postmortems.get(seeded.target)
    first = pm.similar[0]
    assert (first.id, first.services, first.cause_category) == (
        seeded.best,
        ["payments-api"],
        CauseCategory.CONFIGURATION,
    )
    assert first.open_action_items == ["Validate flags before a push"]
    markdown = render_markdown(pm)
    assert "## Have we seen this before?" in markdown and "Validate flags before a push" in markdown

    # made private later: gone from the listing at once; deleted: gone from the links
    best = await any_store.postmortems.get(seeded.best)
    await any_store.postmortems.update(best.id, best.version, PostmortemChanges(visibility=Visibility.PRIVATE), now)
    assert seeded.best not in [s.id for s in (await any_store.postmortems.get(seeded.target)).similar]
    await any_store.postmortems.delete(seeded.second)
    assert seeded.second not in [s.id for s in (await any_store.postmortems.get(seeded.target)).similar]


async def _a_team_report_also_lists_its_own_teams_reports(any_store: Store, seeded: Seeded) -> None:
    target = await any_store.postmortems.get(seeded.target)
    await any_store.postmortems.update(
        target.id, target.version, PostmortemChanges(visibility=Visibility.TEAM, team="payments"), T0
    )
    matches = await any_store.similarity.link(await any_store.postmortems.get(seeded.target))
    assert seeded.team_twin in [m.id for m in matches[:2]]
    assert seeded.private_twin not in [m.id for m in matches]
    target = await any_store.postmortems.get(seeded.target)
    await any_store.postmortems.update(
        target.id, target.version, PostmortemChanges(visibility=Visibility.ORGANISATION), T0
    )


async def _the_index_follows_each_write(any_store: Store, seeded: Seeded) -> None:
    target = await any_store.postmortems.get(seeded.target)
    before = [m.id for m in await any_store.similarity.find(target)]
    # a noise report becomes a close neighbour by its root cause and services being corrected
    noise = await any_store.postmortems.get("pagerduty-pnoise0001")
    sections = [
        Section.model_validate(
            {**s.model_dump(), "body": "A feature flag configuration disabled the card tokenizer", "edited": True}
        )
        if s.key == "root_cause"
        else s
        for s in noise.sections
    ]
    await any_store.postmortems.update(
        noise.id, noise.version, PostmortemChanges(sections=sections, cause_category=CauseCategory.CONFIGURATION), T0
    )
    await any_store.postmortems.set_metrics(
        noise.id, noise.metrics.model_copy(update={"services": ["payments-api"]}), T0
    )
    after = [m.id for m in await any_store.similarity.find(target)]
    assert noise.id not in before and noise.id in after[:3]


async def test_chinese_titles_and_root_causes_are_compared_by_their_characters(any_store: Store) -> None:
    created = T0
    reports = {}
    for incident_id, title, root in (
        ("PZH1", "支付网关超时导致下单失败", "数据库连接池耗尽"),
        ("PZH2", "搜索服务响应缓慢", "索引重建占满磁盘"),
        ("PZH3", "短信通知延迟", "第三方供应商限流"),
    ):
        created += timedelta(days=1)
        reports[incident_id] = await _report(
            any_store, incident_id, title=title, services=["legacy"], created_at=created, root_cause=root
        )
    target = await _report(
        any_store, "PZHT", title="下单失败：支付网关超时", services=["other"], created_at=created + timedelta(days=1)
    )
    matches = await any_store.similarity.find(await any_store.postmortems.get(target))
    assert [m.id for m in matches][:1] == [reports["PZH1"]]


async def test_the_migration_indexes_the_reports_already_there(any_store: Store) -> None:
    await _report(any_store, "PMIG1", title="Checkout errors", services=["checkout"], created_at=T0)
    later = await _report(
        any_store, "PMIG2", title="Checkout slow", services=["checkout"], created_at=T0 + timedelta(days=1)
    )

    def back_and_forth(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "0013")
        command.upgrade(alembic_config(connection), "head")

    async with any_store.engine.begin() as connection:
        await connection.run_sync(back_and_forth)
    matches = await any_store.similarity.find(await any_store.postmortems.get(later))
    assert [m.id for m in matches] == ["pagerduty-pmig1"]
