"""The review meeting inside PostmortemWorkflow: planned, invited over real SMTP, moved and cancelled
through Updates, each revision delivered exactly once."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from icalendar import Calendar
from icalendar import Event as IcsEvent
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from postmortem.activities.meeting import MeetingActivities, SendInviteInput
from postmortem.app.settings import Settings
from postmortem.app.worker import build_worker
from postmortem.config import CalDavSettings, MeetingSettings, ServerSettings, SmtpSettings
from postmortem.incident.teams_file import parse_teams
from postmortem.integrations.caldav_calendar import CalDavCalendar
from postmortem.meeting.models import Meeting, MeetingStatus
from postmortem.meeting.scheduling import find_slot
from postmortem.review import signed_links
from postmortem.store.store import Store
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from postmortem.workflows.inputs import CancelRequest, PostmortemWorkflowInput, RescheduleRequest
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import pagerduty_event
from tests.fakes.radicale_server import radicale_calendar
from tests.fakes.smtp_server import Inbox, smtp_inbox
from tests.support import eventually, next_working_day

TEAMS = """
[default]
timezone = "Europe/Berlin"
organizer = "sre-lead@example.com"
attendees = ["observer@example.com"]

[people]
PJ0LVEB = "pig208@example.com"

[services.pig208]
owners = ["owner@example.com"]
"""

PEOPLE = 4  # the three attendees and the organizer: each gets their own copy of every revision


@dataclass
class Running:
    env: WorkflowEnvironment
    store: Store
    inbox: Inbox
    handle: WorkflowHandle
    postmortem_id: str
    settings: Settings

    async def meeting(self, sequence: int) -> Meeting:
        async def revised() -> Meeting | None:
            found = await self.store.meetings.get(self.postmortem_id)
            return found if found and found.sequence == sequence else None

        return await eventually(revised, timeout=30)


@pytest_asyncio.fixture
async def running(time_skipping_env: WorkflowEnvironment, sqlite_store: Store) -> AsyncIterator[Running]:
    with smtp_inbox() as inbox:
        settings = Settings(
            smtp=SmtpSettings(host=inbox.host, port=inbox.port, starttls=False, sender="postmortem@example.com"),
            server=ServerSettings(public_url="https://pm.example.com"),
            meeting=MeetingSettings(video_url_template="https://meet.example.com/{postmortem_id}"),
        )
        task_queue = f"meeting-{uuid.uuid4().hex}"
        async with build_worker(
            time_skipping_env.client,
            task_queue=task_queue,
            store=sqlite_store,
            teams=parse_teams(TEAMS),
            settings=settings,
        ):
            incident = f"PMEET{uuid.uuid4().hex[:6].upper()}"
            pm_id = postmortem_id_for("pagerduty", incident)
            handle = await time_skipping_env.client.start_workflow(
                PostmortemWorkflow.run,
                PostmortemWorkflowInput(postmortem_id=pm_id, event=pagerduty_event(incident)),
                id=workflow_id_for(pm_id),
                task_queue=task_queue,
            )
            yield Running(time_skipping_env, sqlite_store, inbox, handle, pm_id, settings)


def event_of(ics: str):
    calendar = Calendar.from_ical(ics)
    [event] = [c for c in calendar.walk("VEVENT")]
    return calendar, event


async def test_the_meeting_is_planned_and_invited_once(running: Running) -> None:
    meeting = await running.meeting(0)
    await eventually(lambda: _count(running.inbox, 1))
    assert meeting.uid == f"{running.postmortem_id}@postmortem"
    assert meeting.organizer.email == "sre-lead@example.com"
    assert {a.email for a in meeting.attendees} == {"pig208@example.com", "owner@example.com", "observer@example.com"}
    assert next(a for a in meeting.attendees if a.email == "observer@example.com").required is False
    assert meeting.end - meeting.start == timedelta(minutes=60)  # SEV2 (high urgency)
    assert sum(item.minutes for item in meeting.agenda) == 60
    assert meeting.start > datetime.now(UTC)  # an old incident: never in the past
    assert meeting.video_url == f"https://meet.example.com/{running.postmortem_id}"

    # Everyone invited, each their own copy with the report link signed for them, and the organizer
    # gets the copy that puts the event in their calendar.
    invites = running.inbox.invites()
    people = [a.email for a in meeting.attendees] + [meeting.organizer.email]
    assert sorted(rcpt for _, rcpt in invites) == sorted([person] for person in people)
    secret = await running.store.secrets.get_or_create(signed_links.STORED_SECRET, datetime.now(UTC))
    for message, [person] in invites:
        assert parseaddr(str(message["To"]))[1] == person and message["Cc"] is None, "nobody reads another's link"
        _, copy = event_of(next(p for p in message.walk() if p.get_content_type() == "text/calendar").get_content())
        token = re.search(
            rf"https://pm\.example\.com/postmortems/{running.postmortem_id}\?t=([\w.\-]+)", str(copy["URL"])
        )
        assert token and signed_links.verify(secret, token.group(1), running.postmortem_id, datetime.now(UTC)) == person
        assert token.group(0) in message.as_string() or token.group(0) in _text(message), "in the body too"
        assert {str(a).removeprefix("mailto:") for a in copy.get("ATTENDEE")} >= {a.email for a in meeting.attendees}
    assert len({str(message["Message-ID"]) for message, _ in invites}) == len(people)
    calendar, event = event_of(running.inbox.calendars()[0])
    assert str(calendar["METHOD"]) == "REQUEST" and str(event["UID"]) == meeting.uid and int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == meeting.start
    assert str(event["DTSTART"].params["TZID"]) == "Europe/Berlin"
    assert "Root cause discussion" in str(event["DESCRIPTION"])
    assert (planned := await running.handle.query(PostmortemWorkflow.meeting)) is not None and planned.sequence == 0

    # A retried delivery of the same revision sends nothing more.
    again = await ActivityEnvironment().run(
        MeetingActivities(running.store.meetings, smtp=running.settings.smtp).send_invite,
        SendInviteInput(postmortem_id=running.postmortem_id, sequence=0, channel="email", now=datetime.now(UTC)),
    )
    assert not again.sent and again.detail == "already sent"
    assert len(running.inbox.invites()) == PEOPLE


async def test_reschedule_updates_everyone_and_cancel_ends_the_workflow(running: Running) -> None:
    first = await running.meeting(0)
    await eventually(lambda: _count(running.inbox, 1))
    new_start = next_working_day(first.start, first.timezone).replace(microsecond=0)
    moved = await running.handle.execute_update(
        PostmortemWorkflow.reschedule, RescheduleRequest(start=new_start), id="reschedule-1"
    )
    assert moved.sequence == 1 and moved.start == new_start and moved.end == new_start + (first.end - first.start)
    await eventually(lambda: _count(running.inbox, 2))
    _, event = event_of(running.inbox.calendars()[1 * PEOPLE])
    assert str(event["UID"]) == first.uid and int(event["SEQUENCE"]) == 1 and event.decoded("DTSTART") == new_start

    # The same update id again (a retried HTTP call) is applied once.
    again = await running.handle.execute_update(
        PostmortemWorkflow.reschedule, RescheduleRequest(start=new_start), id="reschedule-1"
    )
    assert again.sequence == 1

    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await running.handle.execute_update(
            PostmortemWorkflow.reschedule, RescheduleRequest(start=datetime(2020, 1, 1, tzinfo=UTC))
        )
    assert "in the past" in str(rejected.value.cause)
    assert (await running.store.meetings.get(running.postmortem_id)).sequence == 1  # type: ignore[union-attr]

    # Saturday 03:00 in the team's zone: refused, naming the hours, unless forced.
    saturday = new_start.astimezone(ZoneInfo("Europe/Berlin")).replace(hour=3, minute=0)
    saturday += timedelta(days=(5 - saturday.weekday()) % 7)
    with pytest.raises(WorkflowUpdateFailedError) as outside:
        await running.handle.execute_update(PostmortemWorkflow.reschedule, RescheduleRequest(start=saturday))
    message = str(outside.value.cause)
    assert "outside the team's working hours, Mon–Fri 09:00–17:00 (Europe/Berlin)" in message and "force" in message
    assert (await running.store.meetings.get(running.postmortem_id)).sequence == 1  # type: ignore[union-attr]
    forced = await running.handle.execute_update(
        PostmortemWorkflow.reschedule, RescheduleRequest(start=saturday, force=True)
    )
    assert forced.sequence == 2 and forced.start == saturday
    await eventually(lambda: _count(running.inbox, 3))

    cancelled = await running.handle.execute_update(PostmortemWorkflow.cancel, CancelRequest(reason="deleted"))
    assert cancelled is not None and cancelled.status == MeetingStatus.CANCELLED and cancelled.sequence == 3
    await eventually(lambda: _count(running.inbox, 4))
    calendar, event = event_of(running.inbox.calendars()[3 * PEOPLE])
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 3
    result = await running.handle.result()
    assert result.postmortem_id == running.postmortem_id
    deliveries = await running.store.meetings.deliveries(running.postmortem_id)
    keys = [key for key, _ in deliveries if ":invite:" in key and ":to:" not in key]
    assert len([key for key, _ in deliveries if ":to:" in key]) == 4 * PEOPLE, "each person's copy recorded"
    assert sorted(keys) == sorted(
        f"{running.postmortem_id}:invite:email:{n}:{m}"
        for n, m in ((0, "REQUEST"), (1, "REQUEST"), (2, "REQUEST"), (3, "CANCEL"))
    )


async def _count(inbox: Inbox, expected: int) -> bool:
    """`expected` revisions, each to every person once (their own copy). Invites only: an old incident
    also gets its overdue reminders by email, which is right."""
    invites = len(inbox.invites())
    assert invites <= expected * PEOPLE, f"{invites} invites, expected {expected} revisions × {PEOPLE} people"
    return invites == expected * PEOPLE


def _text(message: EmailMessage) -> str:
    return "\n".join(str(p.get_content()) for p in message.walk() if p.get_content_type() == "text/plain")


async def test_caldav_free_busy_moves_the_slot_and_reschedule_updates_in_place(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store
) -> None:
    teams = parse_teams(TEAMS)
    incident = f"PCAL{uuid.uuid4().hex[:6].upper()}"
    event = pagerduty_event(incident)
    team = teams.resolve(event.incident)
    now = datetime.now(UTC)
    assert event.incident.resolved_at is not None
    free = find_slot(resolved_at=event.incident.resolved_at, now=now, policy=team.meeting, minutes=60)
    busy_start, busy_end = free.start - timedelta(minutes=30), free.start + timedelta(hours=2)
    async with radicale_calendar() as url, httpx.AsyncClient(timeout=10) as http:
        calendar = CalDavCalendar(url, None, None, http)
        await calendar.put_event("busy-1@example.com", busy_ics("busy-1@example.com", busy_start, busy_end))
        settings = Settings(caldav=CalDavSettings(url=url), server=ServerSettings(public_url="https://pm.example.com"))
        task_queue = f"caldav-{uuid.uuid4().hex}"
        async with build_worker(
            time_skipping_env.client, task_queue=task_queue, store=sqlite_store, teams=teams, settings=settings
        ):
            pm_id = postmortem_id_for("pagerduty", incident)
            handle = await time_skipping_env.client.start_workflow(
                PostmortemWorkflow.run,
                PostmortemWorkflowInput(postmortem_id=pm_id, event=event),
                id=workflow_id_for(pm_id),
                task_queue=task_queue,
            )

            async def stored(sequence: int) -> bytes | None:
                found = await calendar.get_event(f"{pm_id}@postmortem")
                return found if found and f"SEQUENCE:{sequence}".encode() in found else None

            first = Calendar.from_ical(await eventually(lambda: stored(0), timeout=30))
            [vevent] = first.walk("VEVENT")
            start = vevent.decoded("DTSTART")
            assert start >= busy_end or vevent.decoded("DTEND") <= busy_start  # the busy block was avoided
            assert "METHOD" not in first  # a stored calendar object carries no iTIP method

            new_start = next_working_day(start, "Europe/Berlin").replace(microsecond=0)
            await handle.execute_update(PostmortemWorkflow.reschedule, RescheduleRequest(start=new_start))
            [moved] = Calendar.from_ical(await eventually(lambda: stored(1), timeout=30)).walk("VEVENT")
            assert moved.decoded("DTSTART") == new_start
            intervals = await calendar.busy_times(new_start - timedelta(days=10), new_start + timedelta(days=3))
            assert (new_start, new_start + timedelta(hours=1)) in intervals
            assert (start, start + timedelta(hours=1)) not in intervals  # moved in place, not copied


def busy_ics(uid: str, start: datetime, end: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//tests//busy//EN")
    calendar.add("version", "2.0")
    vevent = IcsEvent()
    vevent.add("uid", uid)
    vevent.add("dtstamp", start)
    vevent.add("dtstart", start)
    vevent.add("dtend", end)
    vevent.add("summary", "Deploy freeze review")
    calendar.add_component(vevent)
    return calendar.to_ical()
