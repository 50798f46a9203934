"""The meeting over the REST API: read it, download the .ics, move it through the workflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_webhooks import draft_of, signed
from tests.factories import new_postmortem, pagerduty_event, pagerduty_resolved_body
from tests.support import eventually, next_working_day


async def meeting_of(api: Api, pm_id: str) -> dict:
    async def planned() -> dict | None:
        response = await api.http.get(f"/api/postmortems/{pm_id}/meeting", headers=api.auth(Role.VIEWER))
        return response.json() if response.status_code == 200 else None

    return await eventually(planned, timeout=30)


async def test_meeting_read_download_and_reschedule(api: Api) -> None:
    body = pagerduty_resolved_body("PMAPI")
    assert (await api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))).status_code == 202
    pm = await draft_of(api, "pagerduty-PMAPI")
    meeting = await meeting_of(api, pm.id)
    assert meeting["sequence"] == 0 and meeting["timezone"] == "Europe/Berlin"

    ics = await api.http.get(f"/api/postmortems/{pm.id}/meeting.ics", headers=api.auth(Role.VIEWER))
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert "attachment" in ics.headers["content-disposition"]
    [event] = Calendar.from_ical(ics.content).walk("VEVENT")
    assert str(event["UID"]) == meeting["uid"] and event.decoded("SEQUENCE") == 0

    report = await api.http.get(f"/api/postmortems/{pm.id}", headers=api.auth(Role.VIEWER))
    assert report.json()["meeting"]["uid"] == meeting["uid"]
    markdown = (await api.http.get(f"/api/postmortems/{pm.id}?format=markdown", headers=api.auth())).text
    assert "## Review meeting" in markdown and "Root cause discussion" in markdown

    start = next_working_day(datetime.fromisoformat(meeting["start"]), meeting["timezone"])
    editor = {**api.auth(Role.EDITOR), "Idempotency-Key": "click-1"}
    moved = await api.http.post(f"/api/postmortems/{pm.id}/meeting", json={"start": start.isoformat()}, headers=editor)
    assert moved.status_code == 200, moved.text
    assert moved.json()["sequence"] == 1 and datetime.fromisoformat(moved.json()["start"]) == start
    retried = await api.http.post(
        f"/api/postmortems/{pm.id}/meeting", json={"start": start.isoformat()}, headers=editor
    )
    assert retried.status_code == 200 and retried.json()["sequence"] == 1  # the same click, applied once

    past = await api.http.post(
        f"/api/postmortems/{pm.id}/meeting", json={"start": "2020-01-01T10:00:00+00:00"}, headers=api.auth(Role.EDITOR)
    )
    assert past.status_code == 409 and "in the past" in past.json()["detail"]
    sunday = start.astimezone(ZoneInfo("Europe/Berlin")).replace(hour=20, minute=0)
    sunday += timedelta(days=6 - sunday.weekday())
    outside = await api.http.post(
        f"/api/postmortems/{pm.id}/meeting", json={"start": sunday.isoformat()}, headers=api.auth(Role.EDITOR)
    )
    assert outside.status_code == 409
    assert "outside the team's working hours, Mon–Fri 09:00–17:00 (Europe/Berlin)" in outside.json()["detail"]
    forced = await api.http.post(
        f"/api/postmortems/{pm.id}/meeting",
        json={"start": sunday.isoformat(), "force": True},
        headers=api.auth(Role.EDITOR),
    )
    assert forced.status_code == 200 and forced.json()["sequence"] == 2
    start = sunday
    naive = await api.http.post(
        f"/api/postmortems/{pm.id}/meeting", json={"start": "2030-01-01T10:00:00"}, headers=api.auth(Role.EDITOR)
    )
    assert naive.status_code == 422
    viewer = await api.http.post(
        f"/api/postmortems/{pm.id}/meeting", json={"start": start.isoformat()}, headers=api.auth(Role.VIEWER)
    )
    assert viewer.status_code == 403
    ics = await api.http.get(f"/api/postmortems/{pm.id}/meeting.ics", headers=api.auth(Role.VIEWER))
    [event] = Calendar.from_ical(ics.content).walk("VEVENT")
    assert event.decoded("SEQUENCE") == 2 and event.decoded("DTSTART") == start.astimezone(UTC)


async def test_no_meeting_yet_is_a_clear_404(api: Api) -> None:
    pm, _ = await api.store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PNOMEET").incident))
    response = await api.http.get(f"/api/postmortems/{pm.id}/meeting.ics", headers=api.auth(Role.VIEWER))
    assert response.status_code == 404 and "no review meeting" in response.json()["detail"]
    missing = await api.http.get("/api/postmortems/pagerduty-NOPE/meeting", headers=api.auth(Role.VIEWER))
    assert missing.status_code == 404
