"""REST API: authentication, reading (JSON and Markdown), optimistic edits, listing, action items."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import httpx

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.config import PagerDutySettings, StoreSettings
from postmortem.incident.teams import TeamsConfig
from postmortem.models import Language
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.factories import new_postmortem, pagerduty_event, pagerduty_resolved_body
from tests.support import free_port

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


async def seed(api: Api, incident_id: str, **kwargs) -> str:
    pm, _ = await api.store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(incident_id).incident, **kwargs)
    )
    return pm.id


async def test_authentication_and_roles(api: Api) -> None:
    pm_id = await seed(api, "PAUTH")
    url = f"/api/postmortems/{pm_id}"
    assert (await api.http.get(url)).status_code == 401
    malformed = await api.http.get(url, headers={"Authorization": "Token abc"})
    assert malformed.status_code == 401 and "Bearer" in malformed.json()["detail"]
    assert (await api.http.get(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
    assert (await api.http.get(url, headers=api.auth(Role.VIEWER))).status_code == 200
    denied = await api.http.patch(url, json={"title": "x"}, headers={**api.auth(Role.VIEWER), "If-Match": '"1"'})
    assert denied.status_code == 403 and "editor" in denied.json()["detail"]

    created = await api.http.post("/api/tokens", json={"name": "bot", "role": "viewer"}, headers=api.auth())
    assert created.status_code == 201
    token = created.json()["token"]
    assert (await api.http.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    revoked = await api.http.delete(f"/api/tokens/{created.json()['id']}", headers=api.auth())
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await api.http.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_read_as_json_and_markdown(api: Api) -> None:
    pm_id = await seed(api, "PREAD")
    response = await api.http.get(f"/api/postmortems/{pm_id}", headers=api.auth(Role.VIEWER))
    assert response.status_code == 200 and response.headers["ETag"] == '"1"'
    body = response.json()
    assert body["status"] == "DRAFT" and body["incidents"][0]["id"] == "PREAD"
    assert [s["key"] for s in body["sections"]][:2] == ["summary", "timeline"]

    by_accept = await api.http.get(
        f"/api/postmortems/{pm_id}", headers={**api.auth(Role.VIEWER), "Accept": "text/markdown"}
    )
    by_query = await api.http.get(f"/api/postmortems/{pm_id}?format=markdown", headers=api.auth(Role.VIEWER))
    for markdown in (by_accept, by_query):
        assert markdown.status_code == 200
        assert markdown.headers["content-type"].startswith("text/markdown")
        assert markdown.text.startswith("# 2021-06-04 Test Incident\n")
        assert "## Root cause and contributing factors" in markdown.text
    bad = await api.http.get(f"/api/postmortems/{pm_id}?format=pdf", headers=api.auth())
    assert bad.status_code == 422
    missing = await api.http.get("/api/postmortems/pagerduty-NOPE", headers=api.auth())
    assert missing.status_code == 404 and "pagerduty-NOPE" in missing.json()["detail"]


async def test_patch_needs_the_current_version(api: Api) -> None:
    pm_id = await seed(api, "PPATCH")
    url = f"/api/postmortems/{pm_id}"
    editor = api.auth(Role.EDITOR)
    no_match = await api.http.patch(url, json={"title": "New"}, headers=editor)
    assert no_match.status_code == 428 and "If-Match" in no_match.json()["detail"]

    first = await api.http.patch(
        url,
        json={"title": "Database failover took 40 minutes", "sections": {"root_cause": {"body": "A stale DNS TTL."}}},
        headers={**editor, "If-Match": '"1"'},
    )
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == '"2"'
    root = next(s for s in first.json()["sections"] if s["key"] == "root_cause")
    assert root == {**root, "body": "A stale DNS TTL.", "edited": True}

    stale = await api.http.patch(url, json={"title": "Someone else's"}, headers={**editor, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["ETag"] == '"2"'
    assert (await api.http.get(url, headers=editor)).json()["title"] == "Database failover took 40 minutes"


async def test_patch_validation_names_the_field(api: Api) -> None:
    pm_id = await seed(api, "PVALID")
    url = f"/api/postmortems/{pm_id}"
    headers = {**api.auth(Role.EDITOR), "If-Match": '"1"'}
    too_long = await api.http.patch(url, json={"title": "x" * 257}, headers=headers)
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "title"]
    assert "256" in too_long.json()["detail"][0]["msg"]
    unknown = await api.http.patch(url, json={"sections": {"nope": {"body": "x"}}}, headers=headers)
    assert unknown.status_code == 422 and "nope" in unknown.json()["detail"]
    zone = await api.http.patch(url, json={"timezone": "Mars/Olympus"}, headers=headers)
    assert zone.status_code == 422 and "time zone" in zone.json()["detail"][0]["msg"]
    extra = await api.http.patch(url, json={"status": "PUBLISHED"}, headers=headers)
    assert extra.status_code == 422  # lifecycle fields belong to the workflow
    bad_match = await api.http.patch(url, json={"title": "ok"}, headers={**headers, "If-Match": "banana"})
    assert bad_match.status_code == 400
    assert (await api.http.get(url, headers=headers)).json()["version"] == 1


async def test_switching_language_keeps_edited_sections(api: Api) -> None:
    pm_id = await seed(api, "PLANG")
    url = f"/api/postmortems/{pm_id}"
    editor = api.auth(Role.EDITOR)
    edited = await api.http.patch(
        url,
        json={"sections": {"impact": {"body": "Checkout failed for 3% of users."}}},
        headers={**editor, "If-Match": '"1"'},
    )
    switched = await api.http.patch(
        url, json={"language": "zh"}, headers={**editor, "If-Match": edited.headers["ETag"]}
    )
    assert switched.status_code == 200, switched.text
    sections = {s["key"]: s for s in switched.json()["sections"]}
    assert switched.json()["language"] == Language.ZH
    assert sections["summary"]["title"] == "摘要"
    assert sections["impact"]["body"] == "Checkout failed for 3% of users."


async def test_listing_filters_sorts_and_pages(api: Api) -> None:
    for index in range(5):
        await seed(
            api, f"PPAGE{index}", created_at=NOW + timedelta(hours=index), team="payments" if index < 3 else "search"
        )
    auth = api.auth(Role.VIEWER)
    page = await api.http.get("/api/postmortems", params={"limit": 2, "team": "payments"}, headers=auth)
    assert page.status_code == 200
    first = page.json()
    assert [i["id"] for i in first["items"]] == ["pagerduty-PPAGE2", "pagerduty-PPAGE1"]
    rest = await api.http.get(
        "/api/postmortems", params={"limit": 2, "team": "payments", "cursor": first["next_cursor"]}, headers=auth
    )
    assert [i["id"] for i in rest.json()["items"]] == ["pagerduty-PPAGE0"] and rest.json()["next_cursor"] is None
    ranged = await api.http.get(
        "/api/postmortems",
        params={"created_from": (NOW + timedelta(hours=3)).isoformat(), "status": "DRAFT", "sort": "updated"},
        headers=auth,
    )
    assert {i["id"] for i in ranged.json()["items"]} == {"pagerduty-PPAGE3", "pagerduty-PPAGE4"}
    by_incident = await api.http.get("/api/postmortems", params={"incident_id": "PPAGE4"}, headers=auth)
    assert [i["id"] for i in by_incident.json()["items"]] == ["pagerduty-PPAGE4"]
    for params, status in [
        ({"limit": "201"}, 422),
        ({"limit": "0"}, 422),
        ({"cursor": "garbage!"}, 400),
        ({"status": "LOST"}, 422),
        ({"created_from": "yesterday"}, 422),
        ({"created_from": "2026-01-01T00:00:00"}, 422),
    ]:
        response = await api.http.get("/api/postmortems", params=params, headers=auth)
        assert response.status_code == status, (params, response.text)
    default = await api.http.get("/api/postmortems", headers=auth)
    assert len(default.json()["items"]) == 5


async def test_action_items_crud(api: Api) -> None:
    pm_id = await seed(api, "PITEM")
    base = f"/api/postmortems/{pm_id}/action-items"
    editor = api.auth(Role.EDITOR)
    created = await api.http.post(
        base,
        json={
            "description": "Alert on replication lag",
            "owner": "alice@example.com",
            "due_date": "2026-04-01",
            "priority": "HIGH",
        },
        headers=editor,
    )
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["status"] == "OPEN" and created.headers["Location"].endswith(item["id"])
    for bad in (
        {"description": ""},
        {"description": "x", "priority": "URGENT"},
        {"description": "x", "due_date": "soon"},
        {"description": "x", "color": "red"},
    ):
        response = await api.http.post(base, json=bad, headers=editor)
        assert response.status_code == 422, bad
    stale_free = await api.http.patch(
        f"{base}/{item['id']}", json={"status": "COMPLETED"}, headers={**editor, "If-Match": '"1"'}
    )
    assert stale_free.status_code == 200 and stale_free.json()["status"] == "COMPLETED"
    stale = await api.http.patch(f"{base}/{item['id']}", json={"owner": "bob"}, headers={**editor, "If-Match": '"1"'})
    assert stale.status_code == 412
    listed = await api.http.get(base, headers=api.auth(Role.VIEWER))
    assert [i["id"] for i in listed.json()["items"]] == [item["id"]]
    markdown = await api.http.get(f"/api/postmortems/{pm_id}?format=markdown", headers=editor)
    assert "| Alert on replication lag | alice@example.com | 2026-04-01 | HIGH | COMPLETED |" in markdown.text
    assert (await api.http.delete(f"{base}/{item['id']}", headers=editor)).status_code == 204
    assert (await api.http.get(f"{base}/{item['id']}", headers=editor)).status_code == 404
    assert (
        await api.http.post("/api/postmortems/pagerduty-NOPE/action-items", json={"description": "x"}, headers=editor)
    ).status_code == 404


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_temporal_down_means_queued_webhooks_and_503_elsewhere(sqlite_store, tmp_path) -> None:
    settings = Settings(store=StoreSettings(data_dir=tmp_path), pagerduty=PagerDutySettings(webhook_secrets=["s"]))
    gateway = TemporalGateway(f"127.0.0.1:{free_port()}", "default", "q")
    app = create_app(Services(settings=settings, store=sqlite_store, temporal=gateway, teams=TeamsConfig()))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        body = pagerduty_resolved_body("PDOWN")
        signature = "v1=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
        response = await http.post("/webhooks/pagerduty", content=body, headers={"X-PagerDuty-Signature": signature})
        # The delivery is committed to the inbox and relayed once Temporal is back (tests/api/test_inbox_relay.py).
        assert response.status_code == 202 and response.json()["postmortems"][0]["outcome"] == "queued"
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["temporal"].startswith("unreachable")
        assert ready.json()["inbox"]["backlog"] == 1
        not_configured = await http.post("/webhooks/opsgenie", json={}, headers={"X-Postmortem-Token": "x"})
        assert (
            not_configured.status_code == 503 and "POSTMORTEM_OPSGENIE_WEBHOOK_TOKEN" in not_configured.json()["detail"]
        )


async def test_raw_payloads_only_at_their_admin_route(api: Api) -> None:
    event = pagerduty_event("PRAW")
    assert event.incident.raw["event"]["agent"]  # the delivery names who acted: not for every viewer
    pm_id = await seed(api, "PRAW")
    url = f"/api/postmortems/{pm_id}"
    for role in (Role.VIEWER, Role.EDITOR, Role.ADMIN):
        body = (await api.http.get(url, headers=api.auth(role))).json()
        assert body["incidents"][0]["id"] == "PRAW" and "raw" not in body["incidents"][0]
    patched = await api.http.patch(url, json={"title": "Renamed"}, headers={**api.auth(Role.EDITOR), "If-Match": '"1"'})
    assert patched.status_code == 200 and "raw" not in patched.json()["incidents"][0]

    raw = await api.http.get(f"{url}/raw", headers=api.auth(Role.ADMIN))
    assert raw.status_code == 200
    assert raw.json() == {
        "postmortem_id": pm_id,
        "incidents": [{"source": "pagerduty", "id": "PRAW", "raw": event.incident.model_dump(mode="json")["raw"]}],
    }
    for role in (Role.VIEWER, Role.EDITOR, Role.REVIEWER):
        refused = await api.http.get(f"{url}/raw", headers=api.auth(role))
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert (await api.http.get("/api/postmortems/pagerduty-NOPE/raw", headers=api.auth())).status_code == 404

    schema = (await api.http.get("/openapi.json")).json()
    assert "403" in schema["paths"]["/api/postmortems/{postmortem_id}/raw"]["get"]["responses"]
    incident_view = schema["components"]["schemas"]["IncidentView"]
    assert "raw" not in incident_view["properties"] and "id" in incident_view["properties"]


async def test_a_new_time_zone_is_followed_by_every_text_nobody_edited(api: Api) -> None:
    pm_id = await seed(api, "PZONE")
    url = f"/api/postmortems/{pm_id}"
    editor = api.auth(Role.EDITOR)
    before = (await api.http.get(url, headers=api.auth())).json()
    bodies = {s["key"]: s["body"] for s in before["sections"]}
    assert "UTC" in bodies["timeline"] and "JST" not in bodies["timeline"]
    edited = await api.http.patch(
        url, json={"sections": {"resolution": {"body": "Fixed at 10:00 UTC."}}}, headers={**editor, "If-Match": '"1"'}
    )
    assert edited.status_code == 200, edited.text
    moved = await api.http.patch(url, json={"timezone": "Asia/Tokyo"}, headers={**editor, "If-Match": '"2"'})
    assert moved.status_code == 200, moved.text
    after = {s["key"]: s["body"] for s in moved.json()["sections"]}
    assert "JST" in after["timeline"] and "JST" in after["summary"]  # the timeline and the summary follow
    assert after["resolution"] == "Fixed at 10:00 UTC."  # a person's words are never rewritten
    markdown = (await api.http.get(f"{url}?format=markdown", headers=api.auth())).text
    assert "JST" in markdown and moved.json()["timezone"] == "Asia/Tokyo"


async def test_switching_language_reaches_the_meeting_invite(api: Api) -> None:
    """One voice: after `PATCH {"language": "zh"}` the planned meeting (title, agenda) and the invite's
    words (subject, description) are Chinese; the revision stays (only words changed)."""
    from postmortem.integrations.email_invite import subject
    from postmortem.meeting.agenda import build_agenda
    from postmortem.meeting.invite import invite_description, meeting_title
    from postmortem.meeting.models import Attendee, Meeting

    pm_id = await seed(api, "PVOICE")
    planned = Meeting(
        postmortem_id=pm_id,
        uid=f"{pm_id}@postmortem",
        sequence=1,
        title=meeting_title(Language.EN, "Checkout API latency"),
        start=NOW + timedelta(days=1),
        end=NOW + timedelta(days=1, hours=1),
        timezone="Asia/Shanghai",
        organizer=Attendee(email="lead@example.com"),
        attendees=[Attendee(email="bob@example.com")],
        agenda=build_agenda(60, Language.EN),
        report_url="https://pm.example.com/p",
        video_url="https://meet.example.com/x",
    )
    await api.store.meetings.create_if_absent(planned, NOW)
    switched = await api.http.patch(
        f"/api/postmortems/{pm_id}", json={"language": "zh"}, headers={**api.auth(Role.EDITOR), "If-Match": '"1"'}
    )
    assert switched.status_code == 200, switched.text
    meeting = await api.store.meetings.get(pm_id)
    assert meeting is not None and meeting.language == Language.ZH and meeting.sequence == 1
    assert meeting.title == "复盘会议：Checkout API latency"
    words = f"{subject(meeting, 'REQUEST')}\n{invite_description(meeting)}"
    assert "议程" in words and "根本原因讨论" in words and "会议邀请" in words and "视频会议" in words
    for english in ("Agenda", "Invitation", "Video", "Draft report", "Root cause", "review:", "Mon", "Tue", "Wed"):
        assert english not in words, (english, words)
    back = await api.http.patch(
        f"/api/postmortems/{pm_id}", json={"language": "en"}, headers={**api.auth(Role.EDITOR), "If-Match": '"2"'}
    )
    assert back.status_code == 200
    again = await api.store.meetings.get(pm_id)
    assert again is not None and again.title == "Post-mortem review: Checkout API latency"


async def test_a_new_time_zone_reaches_the_meeting_invite(api: Api) -> None:
    """One voice: after `PATCH {"timezone": "Asia/Tokyo"}` the invite writes its times in Tokyo time (the
    description, the email's subject, the .ics' DTSTART/DTEND), at the same instants and revision."""
    from icalendar import Calendar

    from postmortem.integrations.email_invite import subject
    from postmortem.meeting.agenda import build_agenda
    from postmortem.meeting.invite import invite_description, meeting_title
    from postmortem.meeting.models import Attendee, Meeting

    pm_id = await seed(api, "PZONEMEET")
    start = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)  # 10:30 in Berlin, 18:30 in Tokyo
    planned = Meeting(
        postmortem_id=pm_id,
        uid=f"{pm_id}@postmortem",
        sequence=1,
        title=meeting_title(Language.EN, "Checkout API latency"),
        start=start,
        end=start + timedelta(hours=1),
        timezone="Europe/Berlin",  # the team's zone, as planned
        organizer=Attendee(email="lead@example.com"),
        attendees=[Attendee(email="bob@example.com")],
        agenda=build_agenda(60, Language.EN),
        report_url="https://pm.example.com/p",
    )
    await api.store.meetings.create_if_absent(planned, NOW)
    assert "10:30 CET (09:30 UTC)" in invite_description(planned)
    moved = await api.http.patch(
        f"/api/postmortems/{pm_id}",
        json={"timezone": "Asia/Tokyo"},
        headers={**api.auth(Role.EDITOR), "If-Match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    meeting = await api.store.meetings.get(pm_id)
    assert meeting is not None and meeting.timezone == "Asia/Tokyo"
    assert (meeting.start, meeting.end, meeting.sequence) == (planned.start, planned.end, 1)  # never moved
    described = invite_description(meeting)
    assert "2026-03-03 18:30 JST (09:30 UTC) – 2026-03-03 19:30 JST (10:30 UTC)" in described
    assert "CET" not in described and "Root cause discussion" in described  # the language stays
    assert subject(meeting, "REQUEST").endswith("@ Tue 3 Mar 2026 18:30-19:30 (Asia/Tokyo)")

    ics = await api.http.get(f"/api/postmortems/{pm_id}/meeting.ics", headers=api.auth(Role.VIEWER))
    assert ics.status_code == 200
    [event] = Calendar.from_ical(ics.content).walk("VEVENT")
    assert "DTSTART;TZID=Asia/Tokyo:20260303T183000" in ics.text.replace("\r\n ", "")  # unfolded
    assert event.decoded("DTSTART") == start and event.decoded("DTEND") == start + timedelta(hours=1)
    assert "18:30 JST" in str(event["DESCRIPTION"]) and str(event["SEQUENCE"]) == "1"
    assert [str(tz["TZID"]) for tz in Calendar.from_ical(ics.content).walk("VTIMEZONE")] == ["Asia/Tokyo"]


async def test_a_ticketed_item_changed_here_is_saved_whether_or_not_its_workflow_still_runs(api: Api) -> None:
    """The push to the ticket is the workflow's (action_item_edited); a report whose run is gone
    still saves the edit (the next follow-up sync reads the ticket anyway)."""
    pm_id = await seed(api, "PPUSH")
    editor = api.auth(Role.EDITOR)
    base = f"/api/postmortems/{pm_id}/action-items"
    created = await api.http.post(base, json={"description": "Lower the DNS TTL"}, headers=editor)
    item_id = created.json()["id"]
    await api.store.postmortems.set_ticket(pm_id, item_id, "github", "acme/ops#7", "https://x/7", NOW)
    _, version = await api.store.postmortems.get_action_item(pm_id, item_id)
    changed = await api.http.patch(
        f"{base}/{item_id}",
        json={"status": "IN_PROGRESS", "owner": "bob@example.com"},
        headers={**editor, "If-Match": f'"{version}"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "IN_PROGRESS" and changed.json()["ticket_key"] == "acme/ops#7"
