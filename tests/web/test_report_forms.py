"""The report page's forms beyond text and review: images (upload with its limits, refusal in words,
delete), deleting an action item, changing reviewers, linking an incident, visibility and cause.
Each posts to the page, which calls the JSON API's own route function; CSRF on each; the controls
only for whoever may use them."""

from __future__ import annotations

import re
from collections.abc import Awaitable

import httpx

from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_review_api import drafted, fill, person
from tests.image_samples import png
from tests.web.test_pages import CSRF, sign_in

UPLOAD = re.compile(r'enctype="multipart/form-data" action="([^"]+)"')


async def _csrf(api: Api, pm_id: str) -> tuple[str, str]:
    page = await api.http.get(f"/postmortems/{pm_id}")
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1), page.text  # type: ignore[union-attr]


async def test_images_upload_with_their_limits_refusal_in_words_and_delete(api: Api) -> None:
    pm_id = await drafted(api, "PFORM1")
    await sign_in(api, Role.EDITOR)
    csrf, text = await _csrf(api, pm_id)
    assert "at most 4 MB" in text and "up to 100 images" in text, "the limits are stated beside the field"
    action = UPLOAD.search(text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert f"csrf={csrf}" in action
    added = await api.http.post(action, files={"file": ("graph.png", png(width=3), "image/png")})
    assert added.status_code == 303 and "done=image_added" in added.headers["location"], added.text
    [stored] = await api.store.images.list(pm_id)
    shown = (await api.http.get(added.headers["location"])).text
    assert f"/postmortems/{pm_id}/images/{stored.id}" in shown and "image added" in shown
    image = await api.http.get(f"/postmortems/{pm_id}/images/{stored.id}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    again = await api.http.post(action, files={"file": ("same.png", png(width=3), "image/png")})
    assert again.status_code == 303 and "done=image_known" in again.headers["location"]
    assert len(await api.store.images.list(pm_id)) == 1

    not_image = await api.http.post(action, files={"file": ("graph.png", b"just text, no PNG", "image/png")})
    assert not_image.status_code == 415 and 'role="alert"' in not_image.text
    assert "JPEG, PNG, WebP or GIF" in not_image.text, "the API's refusal, in its words"
    too_big = await api.http.post(action, files={"file": ("big.png", png(size=4 * 1024 * 1024 + 1), "image/png")})
    assert too_big.status_code == 413 and "4 MB" in too_big.text
    no_csrf = await api.http.post(f"/postmortems/{pm_id}/images", files={"file": ("x.png", png(width=5), "image/png")})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    assert len(await api.store.images.list(pm_id)) == 1

    deleted = await api.http.post(f"/postmortems/{pm_id}/images/{stored.id}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303 and "done=image_deleted" in deleted.headers["location"]
    assert await api.store.images.list(pm_id) == []
    gone = await api.http.post(f"/postmortems/{pm_id}/images/{stored.id}/delete", data={"csrf": csrf})
    assert gone.status_code == 404 and "has no image" in gone.text

    await sign_in(api, Role.VIEWER)
    _, viewer_text = await _csrf(api, pm_id)
    assert 'enctype="multipart/form-data"' not in viewer_text, "no upload form for a viewer"
    refused = await api.http.post(action, files={"file": ("v.png", png(width=7), "image/png")})
    assert refused.status_code == 403 and "needs the editor role" in refused.text
    assert await api.store.images.list(pm_id) == []


async def test_delete_an_action_item_from_the_page(api: Api) -> None:
    pm_id = await drafted(api, "PFORM2")
    await sign_in(api, Role.EDITOR)
    csrf, _ = await _csrf(api, pm_id)
    added = await api.http.post(
        f"/postmortems/{pm_id}/action-items", data={"csrf": csrf, "description": "Throttle the batch"}
    )
    assert added.status_code == 303
    [item] = (await api.store.postmortems.get(pm_id)).action_items
    _, text = await _csrf(api, pm_id)
    assert f"/action-items/{item.id}/delete" in text
    for sent in ({}, {"csrf": "not-the-cookie-value-at-all"}):
        refused = await api.http.post(f"/postmortems/{pm_id}/action-items/{item.id}/delete", data=sent)
        assert refused.status_code == 403 and "CSRF" in refused.text
    deleted = await api.http.post(f"/postmortems/{pm_id}/action-items/{item.id}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303 and "done=item_deleted" in deleted.headers["location"]
    assert (await api.store.postmortems.get(pm_id)).action_items == []
    missing = await api.http.post(f"/postmortems/{pm_id}/action-items/{item.id}/delete", data={"csrf": csrf})
    assert missing.status_code == 404

    await api.http.post(f"/postmortems/{pm_id}/action-items", data={"csrf": csrf, "description": "Keep me"})
    [kept] = (await api.store.postmortems.get(pm_id)).action_items
    await sign_in(api, Role.VIEWER)
    csrf, text = await _csrf(api, pm_id)
    assert "/delete" not in text, "no delete buttons for a viewer"
    viewer = await api.http.post(f"/postmortems/{pm_id}/action-items/{kept.id}/delete", data={"csrf": csrf})
    assert viewer.status_code == 403 and "needs the editor role" in viewer.text
    assert len((await api.store.postmortems.get(pm_id)).action_items) == 1


async def test_change_reviewers_from_the_page(api: Api) -> None:
    pm_id = await drafted(api, "PFORM3")
    alice = await person(api, "alice@example.com", Role.REVIEWER)
    await person(api, "bob@example.com", Role.REVIEWER)
    await person(api, "dave@example.com", Role.REVIEWER)
    await sign_in(api, Role.EDITOR)
    csrf, text = await _csrf(api, pm_id)
    assert 'id="change-reviewers"' not in text, "only a report IN_REVIEW has its reviewers changed"
    await fill(api, pm_id)
    base = f"/api/postmortems/{pm_id}"
    reviewers = {"reviewers": ["alice@example.com", "bob@example.com"]}
    assert (await api.http.post(f"{base}/submit", json=reviewers, headers=api.auth())).status_code == 200
    assert (await api.http.post(f"{base}/approve", json={}, headers=alice)).status_code == 200
    csrf, text = await _csrf(api, pm_id)
    assert 'id="change-reviewers"' in text and 'value="alice@example.com, bob@example.com"' in text
    unknown = await api.http.post(
        f"/postmortems/{pm_id}/reviewers", data={"csrf": csrf, "reviewers": "alice@example.com, carol@example.com"}
    )
    assert unknown.status_code == 422 and "carol@example.com" in unknown.text, "the API's refusal, in its words"
    empty = await api.http.post(f"/postmortems/{pm_id}/reviewers", data={"csrf": csrf, "reviewers": " , "})
    assert empty.status_code == 422 and "reviewers" in empty.text
    changed = await api.http.post(
        f"/postmortems/{pm_id}/reviewers", data={"csrf": csrf, "reviewers": "alice@example.com; dave@example.com"}
    )
    assert changed.status_code == 303 and "done=reviewers_changed" in changed.headers["location"], changed.text
    review = await api.store.review.get(pm_id)
    assert [(r.reviewer, r.decision.value) for r in review.reviewers] == [
        ("alice@example.com", "approved"),
        ("dave@example.com", "pending"),
    ], "alice keeps her approval; bob is gone; dave is asked"
    no_csrf = await api.http.post(f"/postmortems/{pm_id}/reviewers", data={"reviewers": "bob@example.com"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    await sign_in(api, Role.VIEWER)
    csrf, text = await _csrf(api, pm_id)
    assert 'id="change-reviewers"' not in text
    viewer = await api.http.post(f"/postmortems/{pm_id}/reviewers", data={"csrf": csrf, "reviewers": "bob@example.com"})
    assert viewer.status_code == 403 and "needs the editor role" in viewer.text


async def test_link_an_incident_from_the_page(api: Api) -> None:
    pm_id = await drafted(api, "PFORM4")
    await sign_in(api, Role.EDITOR)
    csrf, text = await _csrf(api, pm_id)
    assert 'id="link-incident"' in text
    linked = await api.http.post(
        f"/postmortems/{pm_id}/incidents", data={"csrf": csrf, "source": "pagerduty", "incident_id": "PFORM4B"}
    )
    assert linked.status_code == 303 and "done=incident_linked" in linked.headers["location"], linked.text
    assert await api.store.postmortems.owner_of("pagerduty", "PFORM4B") == pm_id
    shown = (await api.http.get(f"/postmortems/{pm_id}")).text
    assert "PFORM4B" in shown
    again = await api.http.post(
        f"/postmortems/{pm_id}/incidents", data={"csrf": csrf, "source": "pagerduty", "incident_id": "PFORM4B"}
    )
    assert again.status_code == 409 and "belongs here already" in again.text
    odd = await api.http.post(
        f"/postmortems/{pm_id}/incidents", data={"csrf": csrf, "source": "jira", "incident_id": "X"}
    )
    assert odd.status_code == 422 and "source" in odd.text
    no_csrf = await api.http.post(f"/postmortems/{pm_id}/incidents", data={"source": "pagerduty", "incident_id": "Z"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    await sign_in(api, Role.VIEWER)
    csrf, text = await _csrf(api, pm_id)
    assert 'id="link-incident"' not in text
    viewer = await api.http.post(
        f"/postmortems/{pm_id}/incidents", data={"csrf": csrf, "source": "pagerduty", "incident_id": "PFORM4C"}
    )
    assert viewer.status_code == 403 and await api.store.postmortems.owner_of("pagerduty", "PFORM4C") is None


async def test_visibility_and_cause_from_the_page(api: Api) -> None:
    pm_id = await drafted(api, "PFORM5")
    await sign_in(api, Role.EDITOR)
    csrf, text = await _csrf(api, pm_id)
    assert 'name="visibility"' in text and 'name="cause_category"' in text
    version = (await api.store.postmortems.get(pm_id)).version
    saved = await api.http.post(
        f"/postmortems/{pm_id}/settings",
        data={"csrf": csrf, "version": str(version), "visibility": "private", "cause_category": "capacity"},
    )
    assert saved.status_code == 303 and "done=settings_saved" in saved.headers["location"], saved.text
    stored = await api.store.postmortems.get(pm_id)
    assert (stored.visibility.value, stored.cause_category and stored.cause_category.value) == ("private", "capacity")
    assert stored.author == "editor", "the first to write in it: its author, who still sees it"
    stale = await api.http.post(
        f"/postmortems/{pm_id}/settings", data={"csrf": csrf, "version": str(version), "visibility": "team"}
    )
    assert stale.status_code == 412 and f"now at version {stored.version}" in stale.text
    wrong = await api.http.post(
        f"/postmortems/{pm_id}/settings", data={"csrf": csrf, "version": str(stored.version), "visibility": "world"}
    )
    assert wrong.status_code == 422 and "visibility" in wrong.text
    no_csrf = await api.http.post(
        f"/postmortems/{pm_id}/settings", data={"version": str(stored.version), "visibility": "organisation"}
    )
    assert no_csrf.status_code == 403
    await sign_in(api, Role.VIEWER)
    hidden = await api.http.get(f"/postmortems/{pm_id}")
    assert hidden.status_code == 404, "private now: a viewer who neither wrote nor reviews it does not see it"

    await sign_in(api, Role.EDITOR)
    csrf, _ = await _csrf(api, pm_id)
    opened = await api.http.post(
        f"/postmortems/{pm_id}/settings",
        data={"csrf": csrf, "version": str(stored.version), "visibility": "organisation"},
    )
    assert opened.status_code == 303
    stored = await api.store.postmortems.get(pm_id)
    assert stored.cause_category is not None and stored.cause_category.value == "capacity", "an empty field keeps it"
    await sign_in(api, Role.VIEWER)
    csrf, text = await _csrf(api, pm_id)
    assert 'name="visibility"' not in text and "Organisation: everyone" in text and "Capacity" in text
    viewer = await api.http.post(
        f"/postmortems/{pm_id}/settings", data={"csrf": csrf, "version": str(stored.version), "visibility": "team"}
    )
    assert viewer.status_code == 403 and "editable by editors" in viewer.text


async def test_pasted_image_answers_json_for_the_editor_with_the_limits_in_words(api: Api) -> None:
    """The live editor's paste/drop route: JSON (201 new, 200 known) for its script, the images API's
    refusals as `{"detail"}` with their status, the CSRF token in a header, and editors only."""
    pm_id = await drafted(api, "PPASTE1")
    await sign_in(api, Role.EDITOR)
    csrf, _ = await _csrf(api, pm_id)
    route = f"/postmortems/{pm_id}/images/paste"

    def post(data: bytes, token: str | None = csrf, name: str = "pasted.png") -> Awaitable[httpx.Response]:
        headers = {"X-CSRF-Token": token} if token else {}
        return api.http.post(route, headers=headers, files={"file": (name, data, "image/png")})

    added = await post(png(width=9))
    assert added.status_code == 201, added.text
    body = added.json()
    [stored] = await api.store.images.list(pm_id)
    assert body["id"] == stored.id and body["media_type"] == "image/png" and body["size"] == stored.size
    shown = await api.http.get(f"/postmortems/{pm_id}/images/{body['id']}")
    assert shown.status_code == 200 and shown.content == png(width=9), "the page URL the editor inserts serves it"
    known = await post(png(width=9), name="again.png")
    assert known.status_code == 200 and known.json()["id"] == stored.id
    assert len(await api.store.images.list(pm_id)) == 1

    not_image = await post(b"plain words, not an image")
    assert not_image.status_code == 415 and "JPEG, PNG, WebP or GIF" in not_image.json()["detail"]
    too_big = await post(png(size=4 * 1024 * 1024 + 1))
    assert too_big.status_code == 413 and "4 MB" in too_big.json()["detail"]
    no_csrf = await post(png(width=11), token=None)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    wrong_csrf = await post(png(width=11), token="not-the-token")
    assert wrong_csrf.status_code == 403
    assert len(await api.store.images.list(pm_id)) == 1, "nothing refused was kept"

    await sign_in(api, Role.VIEWER)
    viewer_csrf, _ = await _csrf(api, pm_id)
    as_viewer = await post(png(width=13), token=viewer_csrf)
    assert as_viewer.status_code == 403 and "needs the editor role" in as_viewer.text
    api.http.cookies.clear()
    anonymous = await post(png(width=13))
    assert anonymous.status_code == 401
    assert len(await api.store.images.list(pm_id)) == 1
