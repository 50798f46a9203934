"""The hijack of issue 12, step by step: an editor of the same team, not given a private report, tries what
worked before (edit its action items, name herself reviewer, read it, resolve its threads, approve it,
find its title on the public page). Each step is refused as if the report did not exist, and after
every step the report is exactly as its author left it."""

from __future__ import annotations

from typing import Any

from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_review_api import drafted
from tests.api.test_visibility_api import token

TITLE = "Card data written to the debug log"


async def test_the_hijack_is_refused_at_its_first_step_and_every_later_one(api: Api) -> None:
    pm_id = await drafted(api, "PHIJACK")  # a real report, its workflow running: a step that got through would act
    base = f"/api/postmortems/{pm_id}"
    author = await token(api, "author@example.com", Role.EDITOR, team="payments")
    eve = await token(api, "eve@example.com", Role.EDITOR, team="payments")
    version = (await api.http.get(base, headers=author)).json()["version"]
    made_private = await api.http.patch(
        base, json={"visibility": "private", "title": TITLE}, headers={**author, "If-Match": f'"{version}"'}
    )
    assert made_private.status_code == 200 and made_private.json()["author"] == "author@example.com"
    item = (await api.http.post(f"{base}/action-items", json={"description": "Scrub the logs"}, headers=author)).json()
    thread = await api.http.post(f"{base}/comments", json={"section": "summary", "body": "Which logs?"}, headers=author)
    assert thread.status_code == 201

    async def as_left() -> dict[str, Any]:
        report = (await api.http.get(base, headers=author)).json()
        comments = (await api.http.get(f"{base}/comments", headers=author)).json()
        return {
            "version": report["version"],
            "title": report["title"],
            "items": report["action_items"],
            "review": report["review"],
            "comments": comments,
        }

    left = await as_left()
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "", {}),  # find it
        ("POST", "/action-items", {"json": {"description": "Eve was here"}}),
        ("PATCH", f"/action-items/{item['id']}", {"json": {"status": "WONT_DO"}, "headers": {"If-Match": '"1"'}}),
        ("DELETE", f"/action-items/{item['id']}", {}),
        ("POST", "/submit", {"json": {"reviewers": ["eve@example.com"]}}),  # name herself reviewer
        ("POST", "/reviewers", {"json": {"reviewers": ["eve@example.com"]}}),
        ("GET", "/review", {}),  # the public slug
        ("GET", "/comments", {}),
        ("POST", "/comments", {"json": {"section": "summary", "body": "Looks fine to me"}}),
        ("POST", f"/comments/{thread.json()['id']}/resolve", {}),
        ("POST", "/approve", {"json": {"comment": "Approved"}}),
        ("POST", "/publish", {}),
    ]
    for number, (method, path, request) in enumerate(steps, 1):
        headers = {**eve, **request.pop("headers", {})}
        response = await api.http.request(method, base + path, headers=headers, **request)
        assert response.status_code == 404, f"step {number}, {method} {path}: {response.status_code} {response.text}"
        assert response.json()["detail"] == f"no post-mortem {pm_id!r}", f"step {number}"
        assert await as_left() == left, f"step {number}, {method} {path} changed the report"
    for listing in ("/api/postmortems", "/api/action-items", "/api/action-items?format=csv", "/api/metrics"):
        answer = await api.http.get(listing, headers=eve)
        assert answer.status_code == 200 and pm_id not in answer.text and TITLE not in answer.text, listing
    assert left["review"]["status"] == "DRAFT" and left["review"]["public_slug"] is None  # nothing on the public page
