"""Visibility per report: organisation, team, private — hidden reports answer 404 and are not listed;
and the rule itself (postmortem.review.visibility), case by case."""

from __future__ import annotations

import pytest

from postmortem.models import Postmortem, Visibility
from postmortem.review.lifecycle import Review, ReviewerState
from postmortem.review.visibility import Reader, may_see
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.factories import new_postmortem, pagerduty_event


async def token(api: Api, name: str, role: Role, team: str | None = None) -> dict[str, str]:
    created = await api.http.post(
        "/api/tokens", json={"name": name, "role": role.value, "team": team}, headers=api.auth()
    )
    assert created.status_code == 201 and created.json()["team"] == team
    return {"Authorization": f"Bearer {created.json()['token']}"}


async def test_visibility_limits_who_sees_a_report(api: Api) -> None:
    pm, _ = await api.store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event("PVIS").incident, team="payments")
    )
    url = f"/api/postmortems/{pm.id}"
    author = await token(api, "author@example.com", Role.EDITOR)
    teammate = await token(api, "mate@example.com", Role.VIEWER, team="payments")
    outsider = await token(api, "out@example.com", Role.VIEWER, team="search")

    first = await api.http.patch(url, json={"visibility": "team"}, headers={**author, "If-Match": '"1"'})
    assert first.status_code == 200 and first.json()["author"] == "author@example.com"
    assert first.json()["visibility"] == "team"

    async def sees(headers: dict[str, str]) -> tuple[int, bool]:
        one = (await api.http.get(url, headers=headers)).status_code
        listed = (await api.http.get("/api/postmortems", headers=headers)).json()["items"]
        return one, pm.id in [item["id"] for item in listed]

    assert await sees(teammate) == (200, True)
    assert await sees(outsider) == (404, False)
    assert await sees(author) == (200, True)
    assert await sees(api.auth(Role.ADMIN)) == (200, True)
    for path in ("/timeline", "/comments", "/meeting"):
        assert (await api.http.get(url + path, headers=outsider)).status_code == 404, path

    private = await api.http.patch(url, json={"visibility": "private"}, headers={**author, "If-Match": '"2"'})
    assert private.status_code == 200
    assert await sees(teammate) == (404, False)
    assert await sees(author) == (200, True)
    await api.http.patch(url, json={"visibility": "organisation"}, headers={**api.auth(Role.ADMIN), "If-Match": '"3"'})
    assert await sees(outsider) == (200, True)
    bad = await api.http.patch(url, json={"visibility": "everyone"}, headers={**author, "If-Match": '"4"'})
    assert bad.status_code == 422


def _report(
    visibility: Visibility, team: str | None = "payments", author: str | None = "ann@example.com"
) -> Postmortem:
    return Postmortem.model_validate(
        {
            "id": "pagerduty-PRULE",
            "workflow_id": "postmortem-pagerduty-PRULE",
            "title": "Checkout errors",
            "status": "DRAFT",
            "team": team,
            "visibility": visibility,
            "author": author,
            "language": "en",
            "variant": "full",
            "timezone": "UTC",
            "version": 1,
            "created_at": "2026-03-02T09:30:00+00:00",
            "updated_at": "2026-03-02T09:30:00+00:00",
        }
    )


@pytest.mark.parametrize(
    ("reader", "visibility", "sees"),
    [
        (Reader("out@example.com", team="search"), Visibility.ORGANISATION, True),
        (Reader("out@example.com", team="search"), Visibility.TEAM, False),
        (Reader("mate@example.com", team="payments"), Visibility.TEAM, True),
        (Reader("mate@example.com", team="payments"), Visibility.PRIVATE, False),
        (Reader("nobody@example.com"), Visibility.TEAM, False),
        (Reader("ann@example.com"), Visibility.PRIVATE, True),
        (Reader("root", admin=True), Visibility.PRIVATE, True),
    ],
)
def test_the_visibility_rule(reader: Reader, visibility: Visibility, sees: bool) -> None:
    assert may_see(reader, _report(visibility)) is sees


def test_reviewers_see_a_private_report_and_a_team_without_a_name_sees_nothing() -> None:
    review = Review(reviewers=[ReviewerState(reviewer="Rita@Example.com")])
    rita = Reader("rita@example.com", team="search")
    assert not may_see(rita, _report(Visibility.PRIVATE))
    assert may_see(rita, _report(Visibility.PRIVATE), review)
    assert not may_see(Reader("x@example.com", team=None), _report(Visibility.TEAM, team=None))
    assert not may_see(Reader("x@example.com"), _report(Visibility.PRIVATE, author=None), review)
