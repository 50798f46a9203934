"""The image store on SQLite and PostgreSQL: bytes round-trip, dedupe by content, the per-report limit."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from postmortem.store.database import sessionmaker
from postmortem.store.images import ImageStore, TooManyImages
from postmortem.store.store import Store
from tests.image_samples import gif, png, webp

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def image_store(store: Store) -> ImageStore:
    return ImageStore(sessionmaker(store.engine))  # what Store will hold as `store.images`


async def test_bytes_round_trip_and_listing_keeps_them_out(any_store: Store) -> None:
    images = image_store(any_store)
    data = png(size=300_000)
    stored, created = await images.add("pm-1", data, "image/png", "chart.png", NOW, max_images=10)
    assert created and stored.size == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.created_at == NOW and stored.created_at.utcoffset() == timedelta(0)
    later, _ = await images.add("pm-1", gif(), "image/gif", "dot.gif", NOW + timedelta(seconds=1), max_images=10)
    await images.add("pm-2", webp(), "image/webp", "other.webp", NOW, max_images=10)

    assert [image.id for image in await images.list("pm-1")] == [stored.id, later.id]
    assert await images.count("pm-1") == 2 and await images.count("nobody") == 0
    found = await images.get("pm-1", stored.id)
    assert found is not None and found[1] == data and found[0] == stored
    assert await images.get("pm-2", stored.id) is None  # an id of another report is not found through this one
    assert await images.find("pm-1", stored.sha256) == stored


async def test_the_same_bytes_are_stored_once_per_report(any_store: Store) -> None:
    images = image_store(any_store)
    first, created = await images.add("pm-1", png(), "image/png", "a.png", NOW, max_images=10)
    again, created_again = await images.add("pm-1", png(), "image/png", "renamed.png", NOW, max_images=10)
    assert created and not created_again and again == first  # the first name stays
    elsewhere, created_elsewhere = await images.add("pm-2", png(), "image/png", "a.png", NOW, max_images=10)
    assert created_elsewhere and elsewhere.id != first.id

    racing = await asyncio.gather(
        *(images.add("pm-3", gif(), "image/gif", "g.gif", NOW, max_images=10) for _ in range(5))
    )
    assert sum(created for _, created in racing) == 1 and len({image.id for image, _ in racing}) == 1
    assert await images.count("pm-3") == 1


async def test_the_limit_holds_under_concurrent_uploads(any_store: Store) -> None:
    images = image_store(any_store)
    await images.add("pm-1", png(width=1), "image/png", "1.png", NOW, max_images=3)
    results = await asyncio.gather(
        *(
            images.add("pm-1", png(width=width), "image/png", f"{width}.png", NOW, max_images=3)
            for width in range(2, 8)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(result, tuple) for result in results) == 2
    refusals = [result for result in results if isinstance(result, BaseException)]
    assert len(refusals) == 4 and all(isinstance(result, TooManyImages) for result in refusals)
    assert {result.count for result in refusals if isinstance(result, TooManyImages)} == {3}
    assert await images.count("pm-1") == 3
    # A full report still answers a retry of bytes it holds.
    _, created = await images.add("pm-1", png(width=1), "image/png", "1.png", NOW, max_images=3)
    assert not created
    with pytest.raises(TooManyImages):
        await images.add("pm-1", png(width=99), "image/png", "99.png", NOW, max_images=3)


async def test_delete_one_and_all(any_store: Store) -> None:
    images = image_store(any_store)
    one, _ = await images.add("pm-1", png(), "image/png", "a.png", NOW, max_images=10)
    await images.add("pm-1", gif(), "image/gif", "b.gif", NOW, max_images=10)
    await images.add("pm-2", gif(), "image/gif", "b.gif", NOW, max_images=10)
    assert not await images.delete("pm-2", one.id)
    assert await images.delete("pm-1", one.id)
    assert not await images.delete("pm-1", one.id)
    assert await images.get("pm-1", one.id) is None
    assert await images.delete_for("pm-1") == 1
    assert await images.list("pm-1") == [] and await images.count("pm-2") == 1
