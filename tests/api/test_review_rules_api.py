"""Who may steer a review over REST: reviewers are people the service knows, reviewers change while IN_REVIEW,
threads are resolved by their author or an editor, an edit in review lapses older approvals (and is kept
when Temporal is away), and a refusal of the workflow answers with its own status."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.models import Status
from postmortem.review.lifecycle import Review, ReviewerState
from postmortem.store.tokens import Role
from tests.api.conftest import TEAMS_PERSON, Api
from tests.api.test_postmortems_api import seed
from tests.api.test_review_api import drafted, fill, person
from tests.support import eventually, free_port


async def test_reviewers_must_be_people_the_service_knows(api: Api) -> None:
    pm_id = await drafted(api, "PKNOWN")
    await fill(api, pm_id)
    base = f"/api/postmortems/{pm_id}"
    await person(api, "alice@example.com", Role.REVIEWER)
    gone, _ = await api.store.tokens.create("gone@example.com", Role.REVIEWER, datetime.now(UTC))
    await api.store.tokens.revoke(gone.id, datetime.now(UTC))
    editor = api.auth(Role.EDITOR)

    refused = await api.http.post(
        f"{base}/submit",
        json={"reviewers": ["ALICE@example.com", "nobody@example.com", "gone@example.com"]},
        headers=editor,
    )
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert "nobody@example.com, gone@example.com" in detail and "alice" not in detail.casefold()
    assert (await api.http.get(f"{base}/review", headers=editor)).json()["status"] == "DRAFT"  # nothing sent

    submitted = await api.http.post(
        f"{base}/submit", json={"reviewers": ["Alice@Example.com", TEAMS_PERSON]}, headers=editor
    )
    assert submitted.status_code == 200, submitted.text
    assert [r["reviewer"] for r in submitted.json()["reviewers"]] == ["Alice@Example.com", TEAMS_PERSON]


async def test_reviewers_change_while_in_review(api: Api) -> None:
    pm_id = await drafted(api, "PREVIEWERS")
    base = f"/api/postmortems/{pm_id}"
    alice = await person(api, "alice@example.com", Role.REVIEWER)
    bob = await person(api, "bob@example.com", Role.REVIEWER)
    editor = api.auth(Role.EDITOR)
    early = await api.http.post(f"{base}/reviewers", json={"reviewers": ["alice@example.com"]}, headers=editor)
    assert early.status_code == 409 and "while IN_REVIEW" in early.json()["detail"]  # the workflow's rule
    await fill(api, pm_id)
    submitted = await api.http.post(
        f"{base}/submit", json={"reviewers": ["alice@example.com", "bob@example.com"]}, headers=editor
    )
    assert submitted.status_code == 200, submitted.text
    assert (await api.http.post(f"{base}/approve", json={}, headers=alice)).json()["status"] == "IN_REVIEW"

    denied = await api.http.post(
        f"{base}/reviewers", json={"reviewers": ["bob@example.com"]}, headers=api.auth(Role.VIEWER)
    )
    assert denied.status_code == 403 and denied.json()["detail"].startswith("this action needs the editor role")
    unknown = await api.http.post(f"{base}/reviewers", json={"reviewers": ["ghost@example.com"]}, headers=editor)
    assert unknown.status_code == 422 and "ghost@example.com" in unknown.json()["detail"]
    assert (await api.http.post(f"{base}/reviewers", json={"reviewers": []}, headers=editor)).status_code == 422

    for headers in (editor, api.auth(Role.ADMIN)):
        changed = await api.http.post(
            f"{base}/reviewers", json={"reviewers": ["alice@example.com", TEAMS_PERSON]}, headers=headers
        )
        assert changed.status_code == 200, changed.text
        decisions = {r["reviewer"]: r["decision"] for r in changed.json()["reviewers"]}
        assert decisions == {"alice@example.com": "approved", TEAMS_PERSON: "pending"}  # alice's approval is kept
        assert changed.json()["status"] == "IN_REVIEW"
    dropped = await api.http.post(f"{base}/approve", json={}, headers=bob)
    assert dropped.status_code == 403 and "not a reviewer" in dropped.json()["detail"]
    stored = (await api.http.get(f"{base}/review", headers=editor)).json()
    assert [r["reviewer"] for r in stored["reviewers"]] == ["alice@example.com", TEAMS_PERSON]


async def test_a_thread_is_resolved_by_its_author_or_an_editor(api: Api) -> None:
    pm_id = await seed(api, "PTHREADS")
    base = f"/api/postmortems/{pm_id}/comments"
    vic = await person(api, "vic@example.com", Role.VIEWER)
    val = await person(api, "val@example.com", Role.VIEWER)
    first = (await api.http.post(base, json={"section": "summary", "body": "Which region?"}, headers=vic)).json()
    reply = (
        await api.http.post(base, json={"section": "x", "body": "eu-west-1", "parent_id": first["id"]}, headers=val)
    ).json()
    second = (await api.http.post(base, json={"section": "impact", "body": "How many?"}, headers=val)).json()

    for target in (first["id"], reply["id"]):  # a reply's author is not the thread's
        refused = await api.http.post(f"{base}/{target}/resolve", headers=val)
        assert refused.status_code == 403, refused.text
        assert "editor role or being its author (vic@example.com)" in refused.json()["detail"]
    by_author = await api.http.post(f"{base}/{reply['id']}/resolve", headers=vic)
    assert by_author.status_code == 200 and by_author.json()["id"] == first["id"]
    assert by_author.json()["resolved_by"] == "vic@example.com"
    by_editor = await api.http.post(f"{base}/{second['id']}/resolve", headers=api.auth(Role.EDITOR))
    assert by_editor.status_code == 200 and by_editor.json()["resolved_by"] == "editor"
    missing = await api.http.post(f"{base}/nope/resolve", headers=vic)
    assert missing.status_code == 404 and missing.json()["detail"] == f"no comment 'nope' in post-mortem {pm_id!r}"


async def test_an_edit_in_review_sends_older_approvals_back_to_pending(api: Api) -> None:
    pm_id = await drafted(api, "PEDITLAPSE")
    base = f"/api/postmortems/{pm_id}"
    alice = await person(api, "alice@example.com", Role.REVIEWER)
    bob = await person(api, "bob@example.com", Role.REVIEWER)
    editor = api.auth(Role.EDITOR)
    await fill(api, pm_id)
    submitted = await api.http.post(
        f"{base}/submit", json={"reviewers": ["alice@example.com", "bob@example.com"]}, headers=editor
    )
    assert submitted.status_code == 200, submitted.text
    approved = await api.http.post(f"{base}/approve", json={}, headers=alice)
    assert approved.status_code == 200, approved.text
    seen = (await api.http.get(base, headers=editor)).json()["version"]
    assert approved.json()["reviewers"][0] == {
        **approved.json()["reviewers"][0],
        "decision": "approved",
        "version": seen,
    }

    edited = await api.http.patch(
        base, json={"title": "Checkout errors after the TTL change"}, headers={**editor, "If-Match": f'"{seen}"'}
    )
    assert edited.status_code == 200 and edited.json()["version"] == seen + 1

    async def alice_pending() -> bool:
        review = (await api.http.get(f"{base}/review", headers=editor)).json()
        return review["reviewers"][0]["decision"] == "pending"

    await eventually(alice_pending)
    assert (await api.http.post(f"{base}/approve", json={}, headers=bob)).json()["status"] == "IN_REVIEW"
    final = await api.http.post(f"{base}/approve", json={}, headers=alice)
    assert final.status_code == 200 and final.json()["status"] == "PUBLISHED", final.text
    assert final.json()["published_version"] == seen + 1


async def test_an_edit_in_review_is_kept_when_temporal_is_away(api: Api) -> None:
    pm_id = await seed(api, "PEDITAWAY")
    await api.store.review.save(
        pm_id,
        Review(status=Status.IN_REVIEW, reviewers=[ReviewerState(reviewer="alice@example.com")]),
        datetime.now(UTC),
    )
    services: Services = api.app.state.services
    away = TemporalGateway(f"127.0.0.1:{free_port()}", "default", services.temporal.task_queue)
    app = create_app(Services(settings=services.settings, store=api.store, temporal=away, teams=services.teams))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://testserver"
    ) as http:
        edited = await http.patch(
            f"/api/postmortems/{pm_id}",
            json={"sections": {"impact": {"body": "Checkout failed for 12 minutes."}}},
            headers={**api.auth(Role.EDITOR), "If-Match": '"1"'},
        )
        assert edited.status_code == 200, edited.text
    assert (await api.store.postmortems.get(pm_id)).version == 2


async def test_a_refusal_answers_with_the_workflows_status(api: Api) -> None:
    pm_id = await drafted(api, "PREFUSED")
    base = f"/api/postmortems/{pm_id}"
    alice = await person(api, "alice@example.com", Role.REVIEWER)
    editor = api.auth(Role.EDITOR)
    empty = await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=editor)
    assert empty.status_code == 422 and "Root cause and contributing factors" in empty.json()["detail"]
    early = await api.http.post(f"{base}/publish", headers=editor)
    assert early.status_code == 403 and "needs the admin role" in early.json()["detail"]
    early = await api.http.post(f"{base}/publish", headers=api.auth(Role.ADMIN))
    assert early.status_code == 409 and "submit it first" in early.json()["detail"]
    await fill(api, pm_id)
    assert (
        await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=editor)
    ).status_code == 200
    stranger = await api.http.post(f"{base}/approve", json={}, headers=api.auth(Role.REVIEWER))
    assert stranger.status_code == 403 and "not a reviewer" in stranger.json()["detail"]
    blank = await api.http.post(f"{base}/request-changes", json={"comment": "  "}, headers=alice)
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["body", "comment"]  # pydantic's
    thread = await api.http.post(f"{base}/comments", json={"section": "impact", "body": "Really?"}, headers=alice)
    assert thread.status_code == 201
    blocked = await api.http.post(f"{base}/approve", json={}, headers=alice)
    assert blocked.status_code == 409 and "comment thread" in blocked.json()["detail"]
    await api.http.post(f"{base}/comments/{thread.json()['id']}/resolve", headers=alice)
    assert (await api.http.post(f"{base}/approve", json={}, headers=alice)).json()["status"] == "PUBLISHED"
