"""Every version of a report's text is kept (what a reviewer approved is what is published), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from postmortem.models import ActionItemStatus, Priority, Status, Visibility
from postmortem.review.lifecycle import Review
from postmortem.store.errors import NotFound, VersionConflict
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from postmortem.store.tables import RevisionRow
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def _report(store: Store, incident_id: str) -> str:
    stored, _ = await store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(incident_id).incident, created_at=NOW)
    )
    return stored.id


async def test_each_version_reads_back_as_it_was(any_store: Store) -> None:
    pm_id = await _report(any_store, "PREV1")
    drafted = await any_store.postmortems.get(pm_id)
    second = await any_store.postmortems.update(
        pm_id, 1, PostmortemChanges(title="Checkout down: primary database failover"), NOW + timedelta(hours=1)
    )
    sections = [s.model_copy(update={"body": "Replication lag hid a stale replica."}) for s in second.sections]
    third = await any_store.postmortems.update(
        pm_id, 2, PostmortemChanges(sections=sections, cause_category="capacity"), NOW + timedelta(hours=2)
    )
    assert (second.version, third.version) == (2, 3)

    first = await any_store.postmortems.revision(pm_id, 1)
    assert first.title == drafted.title and first.sections == drafted.sections and first.version == 1
    assert first.cause_category is None and first.updated_at == NOW
    approved = await any_store.postmortems.revision(pm_id, 2)
    assert approved.title == "Checkout down: primary database failover" and approved.sections == drafted.sections
    assert approved.updated_at == NOW + timedelta(hours=1)
    latest = await any_store.postmortems.revision(pm_id, 3)
    assert latest == third == await any_store.postmortems.get(pm_id)


async def test_a_revision_is_the_old_text_of_the_report_as_it_is_now(any_store: Store) -> None:
    """Who may see it, its status and its action items are the current ones, at any version."""
    pm_id = await _report(any_store, "PREV2")
    drafted = await any_store.postmortems.get(pm_id)
    await any_store.postmortems.update(
        pm_id, 1, PostmortemChanges(title="Edited after approval", visibility=Visibility.PRIVATE), NOW
    )
    item = await any_store.postmortems.add_action_item(
        pm_id,
        description="Alert on replication lag",
        owner="alice@example.com",
        due_date=None,
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        now=NOW,
    )
    await any_store.review.save(pm_id, Review(status=Status.IN_REVIEW), NOW)

    old = await any_store.postmortems.revision(pm_id, 1)
    assert old.title == drafted.title
    assert old.visibility == Visibility.PRIVATE and old.status == Status.IN_REVIEW
    assert [i.id for i in old.action_items] == [item.id]


async def test_unknown_versions_and_reports_are_not_found(any_store: Store) -> None:
    pm_id = await _report(any_store, "PREV3")
    with pytest.raises(NotFound):
        await any_store.postmortems.revision(pm_id, 2)
    with pytest.raises(NotFound):
        await any_store.postmortems.revision("pagerduty-nope", 1)


async def test_a_refused_edit_writes_no_revision(any_store: Store) -> None:
    pm_id = await _report(any_store, "PREV4")
    await any_store.postmortems.update(pm_id, 1, PostmortemChanges(title="First edit"), NOW)
    with pytest.raises(VersionConflict):
        await any_store.postmortems.update(pm_id, 1, PostmortemChanges(title="Lost edit"), NOW)
    assert (await any_store.postmortems.revision(pm_id, 2)).title == "First edit"
    with pytest.raises(NotFound):
        await any_store.postmortems.revision(pm_id, 3)


async def test_a_report_from_before_revisions_reads_its_current_version(any_store: Store) -> None:
    pm_id = await _report(any_store, "PREV5")
    await any_store.postmortems.update(pm_id, 1, PostmortemChanges(title="Written before 0012"), NOW)
    async with any_store.engine.begin() as connection:  # as a report migrated from revision 0011 has it
        await connection.execute(delete(RevisionRow).where(RevisionRow.postmortem_id == pm_id))
    assert (await any_store.postmortems.revision(pm_id, 2)).title == "Written before 0012"
    with pytest.raises(NotFound):
        await any_store.postmortems.revision(pm_id, 1)


async def test_revisions_go_with_their_report(any_store: Store) -> None:
    pm_id = await _report(any_store, "PREV6")
    await any_store.postmortems.update(pm_id, 1, PostmortemChanges(title="Soon deleted"), NOW)
    await any_store.postmortems.delete(pm_id)
    pm_id = await _report(any_store, "PREV6")  # the same id again, from a new resolve of the incident
    assert (await any_store.postmortems.revision(pm_id, 1)).title != "Soon deleted"
    with pytest.raises(NotFound):
        await any_store.postmortems.revision(pm_id, 2)
