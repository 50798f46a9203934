"""Unpublish takes the exports and the public page down in the same write; archive keeps them (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from postmortem.models import Status
from postmortem.review.lifecycle import Review
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SLUG = "3f2a9c0d5b7e4d1a8c6f0e2b4a9d7c15"


async def _published(store: Store, incident_id: str) -> tuple[str, Review]:
    stored, _ = await store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(incident_id).incident, created_at=NOW)
    )
    review = Review(status=Status.PUBLISHED, published_count=1, published_version=1, public_slug=SLUG)
    await store.review.save(stored.id, review, NOW)
    for format in ("md", "public"):
        slug = SLUG if format == "public" else None
        await store.review.put_export(stored.id, format, "text/markdown", b"# Checkout down", 1, NOW, slug=slug)
    return stored.id, review


async def test_unpublish_withdraws_the_exports_and_the_public_page(any_store: Store) -> None:
    pm_id, review = await _published(any_store, "PPUB1")
    assert await any_store.review.public_by_slug(SLUG) == b"# Checkout down"

    await any_store.review.save(pm_id, review.model_copy(update={"status": Status.DRAFT}), NOW)
    assert await any_store.review.get_export(pm_id, "md") is None
    assert await any_store.review.public_by_slug(SLUG) is None
    assert (await any_store.review.get(pm_id)).published_count == 1  # the history of publications stays


async def test_archive_keeps_what_was_published(any_store: Store) -> None:
    pm_id, review = await _published(any_store, "PPUB2")
    await any_store.review.save(pm_id, review.model_copy(update={"status": Status.ARCHIVED}), NOW)
    assert await any_store.review.get_export(pm_id, "md") == ("text/markdown", b"# Checkout down", 1)
    assert await any_store.review.public_by_slug(SLUG) == b"# Checkout down"
