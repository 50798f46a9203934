"""The store on SQLite and on PostgreSQL: schema, idempotent creation, concurrency, listing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from postmortem.models import ActionItemStatus, Priority, Status
from postmortem.store.database import INBOX_SCHEMA, migrate
from postmortem.store.postmortems import (
    InvalidCursor,
    NotFound,
    PostmortemChanges,
    PostmortemFilter,
    VersionConflict,
)
from postmortem.store.store import Store
from postmortem.store.tables import Base, InboxEntryRow, mapped_name
from postmortem.store.tokens import Role
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _split_inbox() -> tuple[MetaData, MetaData]:
    """SQLite keeps the inbox in its own attached file: (every other table, the inbox in that schema)."""
    others, inbox = MetaData(), MetaData()
    for table in Base.metadata.tables.values():
        if table.name == InboxEntryRow.__tablename__:
            table.to_metadata(inbox, schema=INBOX_SCHEMA)
        else:
            table.to_metadata(others)
    return others, inbox


def _in_inbox(name: str | None, type_: str, parents: Any) -> bool:
    return name == INBOX_SCHEMA if type_ == "schema" else mapped_name(name, type_, parents)


async def test_migrations_match_the_mapped_tables(any_store: Store) -> None:
    sqlite = any_store.engine.dialect.name == "sqlite"
    others, inbox = _split_inbox() if sqlite else (Base.metadata, MetaData())

    def compare(sync: Any) -> list[Any]:
        diff = compare_metadata(MigrationContext.configure(sync, opts={"include_name": mapped_name}), others)
        if sqlite:
            opts = {"include_name": _in_inbox, "include_schemas": True}
            diff += compare_metadata(MigrationContext.configure(sync, opts=opts), inbox)
        return diff

    async with any_store.engine.connect() as connection:
        diff = await connection.run_sync(compare)
    assert diff == []
    await migrate(any_store.engine)  # running again at the next start-up changes nothing


async def test_create_is_idempotent_per_incident(any_store: Store) -> None:
    incident = pagerduty_event("PSTORE1").incident
    first, created = await any_store.postmortems.create_if_absent(new_postmortem(incident, created_at=NOW))
    assert created and first.status == Status.DRAFT and first.version == 1
    await any_store.postmortems.update(first.id, 1, PostmortemChanges(title="Edited by a person"), NOW)

    again, created_again = await any_store.postmortems.create_if_absent(new_postmortem(incident, created_at=NOW))
    assert not created_again
    assert again.title == "Edited by a person"  # a retried draft never overwrites an edit
    listed, _ = await any_store.postmortems.list(PostmortemFilter(incident_id="PSTORE1"))
    assert [pm.id for pm in listed] == [first.id]


async def test_concurrent_creation_makes_one_report(any_store: Store) -> None:
    incident = pagerduty_event("PRACE").incident
    results = await asyncio.gather(
        *(any_store.postmortems.create_if_absent(new_postmortem(incident, created_at=NOW)) for _ in range(5))
    )
    assert sum(created for _, created in results) == 1
    assert {pm.id for pm, _ in results} == {"pagerduty-PRACE"}


async def test_round_trip_keeps_incident_evidence_and_utc(any_store: Store) -> None:
    incident = pagerduty_event("PROUND").incident
    stored, _ = await any_store.postmortems.create_if_absent(new_postmortem(incident, created_at=NOW))
    loaded = await any_store.postmortems.get(stored.id)
    assert loaded.created_at == NOW and loaded.created_at.utcoffset() == timedelta(0)
    assert loaded.incidents[0].raw == incident.raw
    assert loaded.incidents[0].resolved_at == incident.resolved_at
    assert loaded.services == ["pig208"]
    assert [s.key for s in loaded.sections] == [s.key for s in stored.sections]


async def test_stale_version_is_refused(any_store: Store) -> None:
    stored, _ = await any_store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event("PSTALE").incident, created_at=NOW)
    )
    updated = await any_store.postmortems.update(stored.id, 1, PostmortemChanges(title="First edit"), NOW)
    assert updated.version == 2
    with pytest.raises(VersionConflict) as conflict:
        await any_store.postmortems.update(stored.id, 1, PostmortemChanges(title="Lost edit"), NOW)
    assert conflict.value.current == 2
    assert (await any_store.postmortems.get(stored.id)).title == "First edit"
    with pytest.raises(NotFound):
        await any_store.postmortems.update("pagerduty-nope", 1, PostmortemChanges(title="x"), NOW)


async def test_list_filters_and_paginates(any_store: Store) -> None:
    for index in range(7):
        incident = pagerduty_event(f"PLIST{index}").incident
        await any_store.postmortems.create_if_absent(
            new_postmortem(
                incident,
                created_at=NOW + timedelta(minutes=index),
                team="payments" if index % 2 else "search",
                status=Status.SKIPPED if index == 6 else Status.DRAFT,
            )
        )
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await any_store.postmortems.list(PostmortemFilter(), limit=3, cursor=cursor)
        seen.extend(pm.id for pm in page)
        if cursor is None:
            break
    assert seen == [f"pagerduty-PLIST{index}" for index in reversed(range(7))]

    payments, _ = await any_store.postmortems.list(PostmortemFilter(team="payments"))
    assert {pm.id for pm in payments} == {f"pagerduty-PLIST{i}" for i in (1, 3, 5)}
    skipped, _ = await any_store.postmortems.list(PostmortemFilter(status=Status.SKIPPED))
    assert [pm.id for pm in skipped] == ["pagerduty-PLIST6"]
    ranged, _ = await any_store.postmortems.list(
        PostmortemFilter(created_from=NOW + timedelta(minutes=2), created_to=NOW + timedelta(minutes=4))
    )
    assert [pm.id for pm in ranged] == ["pagerduty-PLIST3", "pagerduty-PLIST2"]
    by_service, _ = await any_store.postmortems.list(PostmortemFilter(service="pig208"), limit=200)
    assert len(by_service) == 7
    none, _ = await any_store.postmortems.list(PostmortemFilter(service="elsewhere"))
    assert none == []
    with pytest.raises(InvalidCursor):
        await any_store.postmortems.list(PostmortemFilter(), cursor="not-a-cursor")


async def test_action_items_and_cascading_delete(any_store: Store) -> None:
    stored, _ = await any_store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event("PITEMS").incident, created_at=NOW)
    )
    item = await any_store.postmortems.add_action_item(
        stored.id,
        description="Add an alert on replication lag",
        owner="alice@example.com",
        due_date=date(2026, 2, 1),
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        now=NOW,
    )
    changed, version = await any_store.postmortems.update_action_item(
        stored.id, item.id, 1, {"status": ActionItemStatus.IN_PROGRESS.value}, NOW
    )
    assert changed.status == ActionItemStatus.IN_PROGRESS and version == 2
    with pytest.raises(VersionConflict):
        await any_store.postmortems.update_action_item(stored.id, item.id, 1, {"owner": "bob"}, NOW)
    assert [i.id for i in (await any_store.postmortems.get(stored.id)).action_items] == [item.id]

    await any_store.postmortems.delete(stored.id)
    with pytest.raises(NotFound):
        await any_store.postmortems.get(stored.id)
    with pytest.raises(NotFound):
        await any_store.postmortems.get_action_item(stored.id, item.id)
    assert await any_store.postmortems.owner_of("pagerduty", "PITEMS") is None  # the incident is free again


async def test_tokens_are_hashed_and_revocable(any_store: Store) -> None:
    info, secret = await any_store.tokens.create("ci", Role.EDITOR, NOW)
    authenticated = await any_store.tokens.authenticate(secret)
    assert authenticated is not None and authenticated.id == info.id
    async with any_store.engine.connect() as connection:
        stored = (await connection.exec_driver_sql("SELECT token_hash FROM api_tokens")).scalars().all()
    assert secret not in stored and len(stored[0]) == 64
    await any_store.tokens.revoke(info.id, NOW)
    assert await any_store.tokens.authenticate(secret) is None
    bootstrap = await any_store.tokens.ensure("bootstrap", Role.ADMIN, "fixed-secret", NOW)
    assert (await any_store.tokens.ensure("bootstrap", Role.ADMIN, "fixed-secret", NOW)).id == bootstrap.id
