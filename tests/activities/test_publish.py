"""publish_report renders the approved version, and a publication the lifecycle moved past writes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from temporalio.testing import ActivityEnvironment

from postmortem.activities.review import PublishInput, ReviewActivities
from postmortem.config import ReportSettings
from postmortem.evidence.key_metrics import compute_metrics
from postmortem.evidence.timeline import from_incident
from postmortem.models import Status
from postmortem.review.lifecycle import Review
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SLUG = "5d0c1e9a7b3f4a2c8e6d0b1f3a5c7e9d"
APPROVED = "Checkout down: primary database failover"
EDITED_LATER = "Checkout down (edited after the approval)"


async def _approved_then_edited(store: Store, incident_id: str) -> str:
    stored, _ = await store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(incident_id).incident, created_at=NOW)
    )
    await store.postmortems.update(stored.id, 1, PostmortemChanges(title=APPROVED), NOW)  # version 2: approved
    await store.postmortems.update(stored.id, 2, PostmortemChanges(title=EDITED_LATER), NOW)  # version 3
    return stored.id


def _publication(pm_id: str, count: int = 1, version: int | None = 2) -> PublishInput:
    return PublishInput(postmortem_id=pm_id, published_count=count, public_slug=SLUG, version=version, now=NOW)


async def test_what_is_published_is_the_approved_version(sqlite_store: Store) -> None:
    pm_id = await _approved_then_edited(sqlite_store, "PPUBV1")
    review = Review(status=Status.PUBLISHED, published_count=1, published_version=2, public_slug=SLUG)
    await sqlite_store.review.save(pm_id, review, NOW)

    await ActivityEnvironment().run(ReviewActivities(sqlite_store).publish_report, _publication(pm_id))
    exported = await sqlite_store.review.get_export(pm_id, "json")
    assert exported is not None
    document = json.loads(exported[1])
    assert APPROVED in json.dumps(document) and EDITED_LATER not in json.dumps(document)
    public = await sqlite_store.review.public_by_slug(SLUG)
    assert public is not None and APPROVED in public.decode() and EDITED_LATER not in public.decode()

    # Without a version (a workflow from before versions were pinned) the current text is published.
    await ActivityEnvironment().run(ReviewActivities(sqlite_store).publish_report, _publication(pm_id, version=None))
    markdown = await sqlite_store.review.get_export(pm_id, "md")
    assert markdown is not None and EDITED_LATER in markdown[1].decode()


async def test_a_late_publication_does_not_put_back_what_unpublish_withdrew(sqlite_store: Store) -> None:
    pm_id = await _approved_then_edited(sqlite_store, "PPUBV2")
    unpublished = Review(status=Status.DRAFT, published_count=1, published_version=2, public_slug=SLUG)
    await sqlite_store.review.save(pm_id, unpublished, NOW)

    sent = await ActivityEnvironment().run(ReviewActivities(sqlite_store).publish_report, _publication(pm_id))
    assert sent == []
    assert await sqlite_store.review.get_export(pm_id, "md") is None
    assert await sqlite_store.review.public_by_slug(SLUG) is None

    republished = unpublished.model_copy(update={"status": Status.PUBLISHED, "published_count": 2})
    await sqlite_store.review.save(pm_id, republished, NOW)
    await ActivityEnvironment().run(ReviewActivities(sqlite_store).publish_report, _publication(pm_id, count=1))
    assert await sqlite_store.review.get_export(pm_id, "md") is None  # publication 1 is not the current one
    await ActivityEnvironment().run(ReviewActivities(sqlite_store).publish_report, _publication(pm_id, count=2))
    stored = await sqlite_store.review.get_export(pm_id, "md")
    assert stored is not None and stored[2] == 2


async def test_an_archive_before_the_publishing_step_keeps_the_publication(sqlite_store: Store) -> None:
    pm_id = await _approved_then_edited(sqlite_store, "PPUBV3")
    archived = Review(status=Status.ARCHIVED, published_count=1, published_version=2, public_slug=SLUG)
    await sqlite_store.review.save(pm_id, archived, NOW)
    await ActivityEnvironment().run(ReviewActivities(sqlite_store).publish_report, _publication(pm_id))
    assert await sqlite_store.review.public_by_slug(SLUG) is not None


async def test_the_public_page_is_redacted_as_configured_and_the_report_keeps_every_word(sqlite_store: Store) -> None:
    incident = pagerduty_event("PPUBV4").incident  # resolved by the real fixture's "PIG 208"
    stored, _ = await sqlite_store.postmortems.create_if_absent(new_postmortem(incident, created_at=NOW))
    # The teams file's [people] gives the responder an email; the operator's patterns, as the environment sets them.
    metrics = compute_metrics([incident], from_incident(incident), {"PIG 208": "pig208@example.com"})
    assert [(r.name, r.email) for r in metrics.people] == [("PIG 208", "pig208@example.com")]
    settings = ReportSettings.model_validate(
        {ReportSettings.variable("public_redact_patterns"): r"INC-\d+, (?i)project falcon"}
    )
    kept = "The checkout database was failed over to its replica"
    secret = ["PIG 208", "pig208@example.com", "INC-4521", "Project Falcon"]
    summary = f"{kept}. PIG 208 (pig208@example.com) led it; tracked as INC-4521 under PROJECT FALCON."
    sections = [s.model_copy(update={"body": summary}) if s.key == "summary" else s for s in stored.sections]
    await sqlite_store.postmortems.update(
        stored.id, 1, PostmortemChanges(metrics=metrics, sections=sections, title="Project Falcon: checkout down"), NOW
    )
    review = Review(status=Status.PUBLISHED, published_count=1, published_version=2, public_slug=SLUG)
    await sqlite_store.review.save(stored.id, review, NOW)

    activities = ReviewActivities(sqlite_store, report=settings)
    await ActivityEnvironment().run(activities.publish_report, _publication(stored.id))
    public = await sqlite_store.review.public_by_slug(SLUG)
    assert public is not None
    page = public.decode()
    for word in [*secret, "PROJECT FALCON", "PIG", "pig208@"]:
        assert word not in page, word
    assert kept in page and "[redacted]: checkout down" in page
    assert "led it; tracked as [redacted] under [redacted]." in page
    # The internal report and its exports keep every word.
    report = await sqlite_store.postmortems.get(stored.id)
    assert summary in next(s.body for s in report.sections if s.key == "summary")
    for format in ("md", "json"):
        exported = await sqlite_store.review.get_export(stored.id, format)
        assert exported is not None
        text = exported[1].decode()
        assert all(word in text for word in [*secret[:3], "PROJECT FALCON"]), format
