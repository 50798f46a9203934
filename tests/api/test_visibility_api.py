"""Visibility per report: organisation, team, private — hidden reports answer 404 and are not listed."""

from __future__ import annotations

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
