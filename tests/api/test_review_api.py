"""The review lifecycle over REST: permissions per role and status, required sections, idempotent
retries, comment threads blocking publication, exports and the token-free public summary (the rules
are the workflow's; test_review_rules_api.py has the refusals one by one)."""

from __future__ import annotations

from datetime import UTC, datetime

from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_webhooks import draft_of, signed
from tests.factories import pagerduty_resolved_body
from tests.support import eventually

FILLED = {
    key: {"body": f"Filled {key}."}
    for key in (
        "summary",
        "timeline",
        "root_cause",
        "impact",
        "detection_response",
        "resolution",
        "action_items",
        "lessons_learned",
    )
}
FORMATS = ("md", "html", "json", "pdf")


async def person(api: Api, name: str, role: Role) -> dict[str, str]:
    _, secret = await api.store.tokens.create(name, role, datetime.now(UTC))
    return {"Authorization": f"Bearer {secret}"}


async def drafted(api: Api, incident: str) -> str:
    body = pagerduty_resolved_body(incident, resolved_at=datetime.now(UTC))
    assert (await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))).status_code == 202
    return (await draft_of(api, f"pagerduty-{incident}")).id


async def fill(api: Api, pm_id: str) -> None:
    current = (await api.http.get(f"/api/postmortems/{pm_id}", headers=api.auth())).json()
    response = await api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"sections": FILLED},
        headers={**api.auth(Role.EDITOR), "If-Match": f'"{current["version"]}"'},
    )
    assert response.status_code == 200, response.text


async def test_review_to_publication_over_the_api(api: Api) -> None:
    pm_id = await drafted(api, "PRAPI1")
    base = f"/api/postmortems/{pm_id}"
    alice = await person(api, "alice@example.com", Role.REVIEWER)
    editor = api.auth(Role.EDITOR)

    missing = await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=editor)
    assert missing.status_code == 422 and "Root cause and contributing factors" in missing.json()["detail"]
    await fill(api, pm_id)
    assert (await api.http.post(f"{base}/submit", json={"reviewers": []}, headers=editor)).status_code == 422
    assert (
        await api.http.post(f"{base}/submit", json={"reviewers": ["a@x"]}, headers=api.auth(Role.VIEWER))
    ).status_code == 403
    keyed = {**editor, "Idempotency-Key": "submit-click"}
    submitted = await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=keyed)
    assert submitted.status_code == 200 and submitted.json()["status"] == "IN_REVIEW"
    retried = await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=keyed)
    assert retried.status_code in (200, 409)  # the retried click never submits twice
    review = (await api.http.get(f"{base}/review", headers=api.auth())).json()
    assert [t["action"] for t in review["history"]] == ["submit"]

    early = await api.http.get(f"{base}/export", params={"format": "html"}, headers=api.auth())
    assert early.status_code == 409 and "not been published" in early.json()["detail"]
    outsider = await api.http.post(f"{base}/approve", json={}, headers=api.auth(Role.VIEWER))
    assert outsider.status_code == 403 and "not a reviewer" in outsider.json()["detail"]

    thread = await api.http.post(
        f"{base}/comments",
        json={"section": "root_cause", "body": "@bob@example.com is the TTL really 1 day?"},
        headers=alice,
    )
    assert thread.status_code == 201 and thread.json()["mentions"] == ["bob@example.com"]
    reply = await api.http.post(
        f"{base}/comments",
        json={"section": "x", "body": "Yes, checked.", "parent_id": thread.json()["id"]},
        headers=editor,
    )
    assert reply.status_code == 201 and reply.json()["section"] == "root_cause"
    assert (
        await api.http.post(f"{base}/comments", json={"section": "nope", "body": "x"}, headers=alice)
    ).status_code == 422
    blocked = await api.http.post(f"{base}/approve", json={"comment": "ok"}, headers=alice)
    assert blocked.status_code == 409 and "comment threads" in blocked.json()["detail"]
    resolved = await api.http.post(f"{base}/comments/{reply.json()['id']}/resolve", headers=editor)
    assert (
        resolved.status_code == 200 and resolved.json()["id"] == thread.json()["id"] and resolved.json()["resolved_at"]
    )

    published = await api.http.post(f"{base}/approve", json={"comment": "Thorough"}, headers=alice)
    assert published.status_code == 200 and published.json()["status"] == "PUBLISHED"
    report = (await api.http.get(base, headers=api.auth())).json()
    assert report["status"] == "PUBLISHED" and report["review"]["reviewers"][0]["comment"] == "Thorough"

    slug = published.json()["public_slug"]

    async def exported() -> bool:  # publishing is a step of the workflow's run, after the approval is answered
        exports = [await api.http.get(f"{base}/export", params={"format": f}, headers=api.auth()) for f in FORMATS]
        return all(e.is_success for e in exports) and (await api.http.get(f"/public/postmortems/{slug}")).is_success

    await eventually(exported)
    for format, media in (
        ("md", "text/markdown"),
        ("html", "text/html"),
        ("json", "application/json"),
        ("pdf", "application/pdf"),
    ):
        export = await api.http.get(f"{base}/export", params={"format": format}, headers=api.auth(Role.VIEWER))
        assert export.status_code == 200 and export.headers["content-type"].startswith(media), format
    assert (await api.http.get(f"{base}/export", params={"format": "docx"}, headers=api.auth())).status_code == 422
    summary = await api.http.get(f"/public/postmortems/{slug}")
    assert summary.status_code == 200 and "Test Incident" in summary.text
    assert (await api.http.get("/public/postmortems/not-a-slug")).status_code == 404

    locked = await api.http.patch(
        base, json={"title": "Late change"}, headers={**editor, "If-Match": f'"{report["version"]}"'}
    )
    assert locked.status_code == 403 and "admins only" in locked.json()["detail"]
    admin_edit = await api.http.patch(
        base, json={"title": "Corrected title"}, headers={**api.auth(Role.ADMIN), "If-Match": f'"{report["version"]}"'}
    )
    assert admin_edit.status_code == 200
    assert (await api.http.post(f"{base}/unpublish", headers=editor)).status_code == 403
    assert (await api.http.post(f"{base}/unpublish", headers=api.auth(Role.ADMIN))).json()["status"] == "DRAFT"
    # Taken down as soon as unpublish answers: the public page and the exports.
    assert (await api.http.get(f"/public/postmortems/{slug}")).status_code == 404
    for format in FORMATS:
        gone = await api.http.get(f"{base}/export", params={"format": format}, headers=api.auth())
        assert gone.status_code == 409, format
    assert (await api.http.post(f"{base}/archive", headers=api.auth(Role.ADMIN))).status_code == 409


async def test_editing_rights_follow_the_status(api: Api) -> None:
    pm_id = await drafted(api, "PRAPI2")
    base = f"/api/postmortems/{pm_id}"
    carol = await person(api, "carol@example.com", Role.VIEWER)  # a viewer who is also a reviewer

    async def edit(headers: dict[str, str]) -> int:
        version = (await api.http.get(base, headers=api.auth())).json()["version"]
        return (
            await api.http.patch(
                base, json={"title": f"Edit {version}"}, headers={**headers, "If-Match": f'"{version}"'}
            )
        ).status_code

    assert await edit(api.auth(Role.VIEWER)) == 403
    assert await edit(carol) == 403
    assert await edit(api.auth(Role.EDITOR)) == 200
    await fill(api, pm_id)
    await api.http.post(f"{base}/submit", json={"reviewers": ["carol@example.com"]}, headers=api.auth(Role.EDITOR))
    assert await edit(carol) == 200  # reviewers may edit while the report is in review
    assert await edit(api.auth(Role.VIEWER)) == 403
    item = await api.http.post(
        f"{base}/action-items", json={"description": "Lower the TTL"}, headers=api.auth(Role.EDITOR)
    )
    assert item.status_code == 201  # action items stay editable in every status


EXPECTED = {  # role → may edit the report's text in DRAFT, IN_REVIEW, PUBLISHED, ARCHIVED
    "viewer": (403, 403, 403, 403),
    "viewer who reviews": (403, 200, 403, 403),
    "editor": (200, 200, 403, 403),
    "reviewer": (200, 200, 403, 403),
    "admin": (200, 200, 200, 200),
}


async def test_each_role_against_each_status(api: Api) -> None:
    pm_id = await drafted(api, "PMATRIX")
    base = f"/api/postmortems/{pm_id}"
    callers = {
        "viewer": api.auth(Role.VIEWER),
        "viewer who reviews": await person(api, "dana@example.com", Role.VIEWER),
        "editor": api.auth(Role.EDITOR),
        "reviewer": api.auth(Role.REVIEWER),
        "admin": api.auth(Role.ADMIN),
    }
    await fill(api, pm_id)
    seen: dict[str, list[int]] = {role: [] for role in callers}

    async def try_all() -> None:
        for role, headers in callers.items():
            version = (await api.http.get(base, headers=api.auth())).json()["version"]
            response = await api.http.patch(
                base,
                json={"sections": {"impact": {"body": f"{role} was here"}}},
                headers={**headers, "If-Match": f'"{version}"'},
            )
            seen[role].append(response.status_code)
            item = await api.http.post(
                f"{base}/action-items", json={"description": f"{role} item"}, headers=api.auth(Role.EDITOR)
            )
            assert item.status_code == 201  # action items stay editable in every status

    await try_all()  # DRAFT
    dana = callers["viewer who reviews"]
    await api.http.post(f"{base}/submit", json={"reviewers": ["dana@example.com"]}, headers=api.auth(Role.EDITOR))
    await try_all()  # IN_REVIEW
    assert (await api.http.post(f"{base}/approve", json={}, headers=dana)).json()["status"] == "PUBLISHED"
    await try_all()  # PUBLISHED
    assert (await api.http.post(f"{base}/archive", headers=api.auth(Role.ADMIN))).json()["status"] == "ARCHIVED"
    await try_all()  # ARCHIVED
    assert {role: tuple(codes) for role, codes in seen.items()} == EXPECTED


async def test_required_sections_are_judged_by_meaning(api: Api) -> None:
    pm_id = await drafted(api, "PRMEANING")
    base = f"/api/postmortems/{pm_id}"
    editor = api.auth(Role.EDITOR)
    await person(api, "alice@example.com", Role.REVIEWER)
    drafted_report = (await api.http.get(base, headers=api.auth())).json()
    lessons = next(s for s in drafted_report["sections"] if s["key"] == "lessons_learned")
    assert "### What went well" in lessons["body"]  # the template's sub-headings, nothing else
    missing = await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=editor)
    assert missing.status_code == 422
    assert "Lessons learned" in missing.json()["detail"] and "Action items" in missing.json()["detail"]

    sections = {key: value for key, value in FILLED.items() if key != "action_items"}
    response = await api.http.patch(
        base, json={"sections": sections}, headers={**editor, "If-Match": f'"{drafted_report["version"]}"'}
    )
    assert response.status_code == 200, response.text
    for description in ("Lower the TTL", "Alert on cache misses", "Runbook for the failover"):
        created = await api.http.post(f"{base}/action-items", json={"description": description}, headers=editor)
        assert created.status_code == 201, created.text
    submitted = await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=editor)
    assert submitted.status_code == 200, submitted.text  # three action items fill "Action items"
