"""Lists across reports (reports, action items and their CSV, metrics) hold only what the caller may see.

The store's SQL filter (`listing.visible_to`) is `may_see` itself, case by case on both databases;
over the API, a private report's reviewer finds it in every list and an outsider in none.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from postmortem.models import ActionItemStatus, Postmortem, Priority, Status, Visibility
from postmortem.review.lifecycle import Review, ReviewerState
from postmortem.review.visibility import Reader, may_see
from postmortem.store.postmortems import PostmortemChanges, PostmortemFilter
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_visibility_api import token
from tests.factories import new_postmortem, pagerduty_event

NOW = datetime.now(UTC)
READERS = [
    Reader("ann@example.com"),  # the author of every report below
    Reader("rita@example.com"),  # reviews one of them (stored as Rita@Example.com)
    Reader("mate@example.com", team="payments"),
    Reader("out@example.com", team="search"),
    Reader("nobody@example.com"),
    Reader("root", admin=True),
]


async def reports(store: Store) -> list[tuple[Postmortem, Review]]:
    """One report per visibility, each with an action item, and a private one reviewed by Rita."""
    made: list[tuple[Postmortem, Review]] = []
    for incident, visibility, reviewers in (
        ("PLISTORG", Visibility.ORGANISATION, []),
        ("PLISTTEAM", Visibility.TEAM, []),
        ("PLISTPRIV", Visibility.PRIVATE, []),
        ("PLISTREV", Visibility.PRIVATE, ["Rita@Example.com", "bob@example.com"]),
    ):
        pm, _ = await store.postmortems.create_if_absent(
            new_postmortem(pagerduty_event(incident).incident, team="payments")
        )
        pm = await store.postmortems.update(
            pm.id, pm.version, PostmortemChanges(visibility=visibility, author="ann@example.com"), NOW
        )
        review = Review(status=Status.IN_REVIEW, reviewers=[ReviewerState(reviewer=name) for name in reviewers])
        if reviewers:
            await store.review.save(pm.id, review, NOW)
        await store.postmortems.add_action_item(
            pm.id,
            description=f"Item of {incident}",
            owner=None,
            due_date=None,
            priority=Priority.MEDIUM,
            status=ActionItemStatus.OPEN,
            now=NOW,
        )
        made.append((await store.postmortems.get(pm.id), review))
    return made


async def test_the_sql_filter_is_the_visibility_rule(any_store: Store) -> None:
    made = await reports(any_store)
    for reader in READERS:
        expected = {pm.id for pm, review in made if may_see(reader, pm, review)}
        listed, _ = await any_store.postmortems.list(PostmortemFilter(viewer=reader), limit=200)
        items = await any_store.postmortems.action_items(viewer=reader)
        assert {pm.id for pm in listed} == expected, reader
        assert {pm_id for pm_id, _, _, _ in items} == expected, reader
    rita = {pm.id for pm in (await any_store.postmortems.list(PostmortemFilter(viewer=READERS[1])))[0]}
    assert rita == {made[0][0].id, made[3][0].id}  # the organisation's report and the one she reviews
    everything = {pm.id for pm, _ in made}
    assert {pm_id for pm_id, _, _, _ in await any_store.postmortems.action_items()} == everything  # the system's view


@pytest.mark.parametrize("caller", ["reviewer", "outsider"])
async def test_a_private_report_is_in_the_lists_of_its_reviewer_only(api: Api, caller: str) -> None:
    made = await reports(api.store)
    reviewed = made[3][0]
    headers = await token(
        api, "rita@example.com" if caller == "reviewer" else "out@example.com", Role.VIEWER, team="search"
    )
    sees = caller == "reviewer"
    listed = (await api.http.get("/api/postmortems", headers=headers)).json()["items"]
    assert (reviewed.id in {item["id"] for item in listed}) is sees
    items = (await api.http.get("/api/action-items", headers=headers)).json()
    assert ("Item of PLISTREV" in {item["description"] for item in items}) is sees
    exported = await api.http.get("/api/action-items", params={"format": "csv"}, headers=headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["postmortem_id"] for row in rows} == {made[0][0].id} | ({reviewed.id} if sees else set())
    metrics = (await api.http.get("/api/metrics", headers=headers)).json()
    assert metrics["postmortems_created"] == (2 if sees else 1)
    assert metrics["action_items_total"] == (2 if sees else 1)
    admin = (await api.http.get("/api/metrics", headers=api.auth(Role.ADMIN))).json()
    assert admin["postmortems_created"] == 4 and admin["action_items_total"] == 4
