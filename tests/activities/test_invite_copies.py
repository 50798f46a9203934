"""Each person's own copy of the email invite: the report link signed for them, one copy each however
often the step runs, and an address the relay refuses for good keeps nobody else from theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from urllib.parse import parse_qs, urlsplit

import pytest
from icalendar import Calendar
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from postmortem.activities.meeting import MeetingActivities, SendInviteInput
from postmortem.activities.page_links import PageLinks
from postmortem.config import ServerSettings, SmtpSettings, WebSettings
from postmortem.meeting.models import Attendee, Meeting
from postmortem.review import signed_links
from postmortem.store.store import Store
from tests.fakes.smtp_server import Inbox, smtp_inbox

SERVER = ServerSettings(public_url="https://pm.example.com")
PEOPLE = ["ana@example.com", "bo@example.com", "cy@example.com"]
ORGANIZER = "lead@example.com"


def meeting(pm_id: str) -> Meeting:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    return Meeting(
        postmortem_id=pm_id,
        uid=f"{pm_id}@postmortem",
        sequence=0,
        title="Post-mortem review: checkout",
        start=start,
        end=start + timedelta(hours=1),
        timezone="Europe/Berlin",
        organizer=Attendee(email=ORGANIZER),
        attendees=[Attendee(email=person) for person in PEOPLE],
        agenda=[],
        report_url=signed_links.page_url(SERVER.resolved_public_url, pm_id),
    )


def activities(store: Store, inbox: Inbox) -> MeetingActivities:
    smtp = SmtpSettings(host=inbox.host, port=inbox.port, starttls=False, sender="postmortem@example.com")
    return MeetingActivities(store.meetings, smtp=smtp, server=SERVER, links=PageLinks(store, SERVER, WebSettings()))


def token_in(ics: str) -> str:
    [event] = Calendar.from_ical(ics).walk("VEVENT")
    return parse_qs(urlsplit(str(event["URL"])).query)["t"][0]


async def test_each_person_gets_a_copy_with_their_own_link_once(sqlite_store: Store) -> None:
    planned = await sqlite_store.meetings.create_if_absent(meeting("pagerduty-PCOPY1"), datetime.now(UTC))
    step = SendInviteInput(postmortem_id=planned.postmortem_id, sequence=0, channel="email", now=datetime.now(UTC))
    with smtp_inbox() as inbox:
        sent = await ActivityEnvironment().run(activities(sqlite_store, inbox).send_invite, step)
        assert sent.sent and "4 people" in sent.detail
        secret = await sqlite_store.secrets.get_or_create(signed_links.STORED_SECRET, step.now)
        readers = {}
        for message, [person] in inbox.invites():
            ics = next(p for p in message.walk() if p.get_content_type() == "text/calendar").get_content()
            assert parseaddr(str(message["To"]))[1] == person and message["Cc"] is None
            readers[person] = signed_links.verify(secret, token_in(ics), planned.postmortem_id, step.now)
        assert readers == {person: person for person in [*PEOPLE, ORGANIZER]}, "each link speaks for its reader"
        again = await ActivityEnvironment().run(activities(sqlite_store, inbox).send_invite, step)
        assert not again.sent and inbox.invite_revisions() == 1 and len(inbox.invites()) == 4


async def test_a_refused_address_keeps_nobody_else_from_theirs_and_the_retry_sends_only_it(sqlite_store: Store) -> None:
    planned = await sqlite_store.meetings.create_if_absent(meeting("pagerduty-PCOPY2"), datetime.now(UTC))
    step = SendInviteInput(postmortem_id=planned.postmortem_id, sequence=0, channel="email", now=datetime.now(UTC))
    with smtp_inbox() as inbox:
        inbox.fail_with(550, "5.1.1 <{address}>: Recipient address rejected: User unknown", only=["bo@example.com"])
        with pytest.raises(ApplicationError) as refused:  # for good: the workflow records it as a problem
            await ActivityEnvironment().run(activities(sqlite_store, inbox).send_invite, step)
        assert refused.value.non_retryable and "bo@example.com" in str(refused.value)
        assert sorted(rcpt[0] for _, rcpt in inbox.invites()) == sorted(
            ["ana@example.com", "cy@example.com", ORGANIZER]
        )

        inbox.heal()  # the mailbox exists now; the problem's retry runs the step again
        retried = await ActivityEnvironment().run(activities(sqlite_store, inbox).send_invite, step)
        assert retried.sent
        assert [rcpt for _, rcpt in inbox.invites()][-1] == ["bo@example.com"], "only the missing copy"
        assert len(inbox.invites()) == 4 and inbox.invite_revisions() == 1
