"""invite_message + SmtpMailer against a real SMTP server (aiosmtpd) on loopback, plain and STARTTLS+AUTH."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from icalendar import Calendar

from postmortem.integrations.email_invite import SmtpMailer, invite_message, message_id
from postmortem.integrations.http_errors import UpstreamError
from postmortem.meeting.invite import build_invite, unique_attendees
from postmortem.meeting.models import AgendaItem, Attendee, Meeting
from tests.fakes.smtp_server import smtp_inbox
from tests.support import free_port

SENDER = "Post-mortem bot <postmortems@ops.example.com>"
NOW = datetime(2026, 3, 20, 10, 30, tzinfo=UTC)
LOGIN, PASSWORD = "mailer", "correct horse battery staple"


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps every envelope; some addresses and bodies get refused."""

    envelopes: list[Any] = field(default_factory=list)
    sessions: list[Any] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply
    refuse_data: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_data:
            return self.refuse_data
        self.envelopes.append(envelope)
        self.sessions.append((session.authenticated, session.auth_data, session.ssl is not None))
        return "250 Message accepted for delivery"

    def only_message(self) -> EmailMessage:
        [envelope] = self.envelopes
        return email.message_from_bytes(envelope.content, policy=email.policy.default)


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == LOGIN.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=LOGIN if ok else None)


@contextlib.contextmanager
def smtp_server(handler: Mailbox, **smtp_parameters: Any) -> Iterator[int]:
    """aiosmtpd on 127.0.0.1; Controller.start() returns once it answers, so no waiting after."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="smtp.test", **smtp_parameters)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls() -> Tls:
    """A throw-away CA and a certificate for 127.0.0.1; the client context trusts only that CA."""
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server=server, client=client)


def make_meeting(**changes: Any) -> Meeting:
    start = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    fields: dict[str, Any] = dict(
        postmortem_id="pm-4711",
        uid="pm-4711@postmortem.example.com",
        sequence=1,
        title="Post-mortem review: INC-4711 Zahlungsdienst überlastet",
        start=start,
        end=start + timedelta(minutes=60),
        timezone="Europe/Berlin",
        organizer=Attendee(email="ingrid@example.com", name="Ingrid Commander"),
        attendees=[
            Attendee(email="bob@example.com", name="Bob Müller"),
            Attendee(email="carol@example.com"),
            Attendee(email="dave@example.com", required=False),
        ],
        agenda=[AgendaItem(title="Timeline", minutes=20), AgendaItem(title="Action items", minutes=40)],
        report_url="https://postmortems.example.com/api/postmortems/pm-4711",
        video_url="https://meet.example.com/pm-4711",
    )
    fields.update(changes)
    return Meeting(**fields)


def message_for(meeting: Meeting, method: str = "REQUEST") -> tuple[bytes, EmailMessage]:
    ics = build_invite(meeting, method=method, now=NOW, description="Agenda:\n1. Timeline\n2. Action items")  # type: ignore[arg-type]
    body = f"You are invited to {meeting.title}.\nReport: {meeting.report_url}\nGrüße, the post-mortem bot"
    recipients = unique_attendees(meeting.attendees)
    return ics, invite_message(meeting, ics, method=method, sender=SENDER, body_text=body, recipients=recipients)


def plain_mailer(port: int, **kwargs: Any) -> SmtpMailer:
    return SmtpMailer("127.0.0.1", port, None, None, starttls=False, timeout=5, **kwargs)


async def test_invitation_arrives_as_imip_with_accept_decline_parts() -> None:
    meeting = make_meeting()
    ics, message = message_for(meeting)
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        await plain_mailer(port).send(message)

    [envelope] = mailbox.envelopes
    assert envelope.mail_from == "postmortems@ops.example.com"
    assert envelope.content.isascii()  # umlauts and all: no relay on the way needs 8BITMIME
    # every attendee, and the organizer (not an attendee) so RSVPs find the event in their calendar
    assert envelope.rcpt_tos == ["bob@example.com", "carol@example.com", "dave@example.com", "ingrid@example.com"]
    received = mailbox.only_message()
    assert received["From"] == SENDER
    assert [a.addr_spec for a in received["To"].addresses] == [
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
    ]
    assert received["To"].addresses[0].display_name == "Bob Müller"
    assert [a.addr_spec for a in received["Cc"].addresses] == ["ingrid@example.com"]
    assert [a.addr_spec for a in received["Reply-To"].addresses] == ["ingrid@example.com"]
    assert received["Subject"] == (
        "Invitation: Post-mortem review: INC-4711 Zahlungsdienst überlastet @ Mon 30 Mar 2026 10:00-11:00 (Europe/Berlin)"
    )
    assert received["Message-ID"] == message_id(meeting.uid, 1, "REQUEST", SENDER)
    assert received["Message-ID"].endswith("@ops.example.com>")
    assert received["Date"].datetime == NOW  # the invite's DTSTAMP

    # multipart/mixed [ multipart/alternative [ text/plain, text/calendar ], application/ics ]
    assert received.get_content_type() == "multipart/mixed"
    alternative, attachment = received.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text, calendar_part = alternative.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert "Grüße, the post-mortem bot" in text.get_content()
    assert calendar_part.get_content_type() == "text/calendar"
    assert calendar_part.get_param("method") == "REQUEST"
    assert calendar_part.get_content_charset() == "utf-8"
    assert calendar_part.get_content_disposition() is None  # inline: the part calendars act on
    assert calendar_part.get_payload(decode=True) == ics  # byte for byte: CRLF and folding intact
    calendar = Calendar.from_ical(calendar_part.get_content())
    assert calendar["METHOD"] == calendar_part.get_param("method")
    [event] = calendar.walk("VEVENT")
    assert event["UID"] == meeting.uid
    assert event["SEQUENCE"] == 1

    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_payload(decode=True) == ics


async def test_cancellation_is_a_new_message_with_method_cancel() -> None:
    meeting = make_meeting(sequence=2)
    ics, message = message_for(meeting, "CANCEL")
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        await plain_mailer(port).send(message)
    received = mailbox.only_message()
    assert received["Subject"].startswith("Cancelled: Post-mortem review: INC-4711")
    calendar_part = next(p for p in received.walk() if p.get_content_type() == "text/calendar")
    assert calendar_part.get_param("method") == "CANCEL"
    assert Calendar.from_ical(calendar_part.get_content())["METHOD"] == "CANCEL"
    assert received["Message-ID"] == message_id(meeting.uid, 2, "CANCEL", SENDER)


def test_message_id_is_the_same_for_a_resend_and_new_for_each_revision() -> None:
    _, first = message_for(make_meeting(sequence=1))
    _, again = message_for(make_meeting(sequence=1))
    _, moved = message_for(make_meeting(sequence=2))
    _, cancelled = message_for(make_meeting(sequence=2), "CANCEL")
    assert first["Message-ID"] == again["Message-ID"]
    assert len({first["Message-ID"], moved["Message-ID"], cancelled["Message-ID"]}) == 3
    # the whole message is a function of its inputs (only the random MIME boundaries differ)
    assert list(first.items())[:-1] == list(again.items())[:-1]  # all but Content-Type (boundary)
    leaves = [(p.get_content_type(), p.get_payload(decode=True)) for p in first.walk() if not p.is_multipart()]
    assert leaves == [(p.get_content_type(), p.get_payload(decode=True)) for p in again.walk() if not p.is_multipart()]


def test_organizer_who_attends_is_not_copied_twice() -> None:
    meeting = make_meeting(attendees=[Attendee(email="Ingrid@example.com"), Attendee(email="bob@example.com")])
    _, message = message_for(meeting)
    assert [a.addr_spec for a in message["To"].addresses] == ["Ingrid@example.com", "bob@example.com"]
    assert message["Cc"] is None


def test_method_must_match_the_calendar_object() -> None:
    meeting = make_meeting()
    ics = build_invite(meeting, method="REQUEST", now=NOW, description="")
    with pytest.raises(ValueError, match="METHOD:REQUEST"):
        invite_message(meeting, ics, method="CANCEL", sender=SENDER, body_text="", recipients=meeting.attendees)


async def test_starttls_and_auth_deliver(tls: Tls) -> None:
    mailbox = Mailbox()
    _, message = message_for(make_meeting())
    with smtp_server(
        mailbox,
        tls_context=tls.server,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    ) as port:
        mailer = SmtpMailer("127.0.0.1", port, LOGIN, PASSWORD, starttls=True, timeout=5, tls_context=tls.client)
        await mailer.send(message)
    assert mailbox.sessions == [(True, LOGIN, True)]  # authenticated, as LOGIN, over TLS
    assert mailbox.only_message()["Message-ID"] == message["Message-ID"]


async def test_wrong_password_is_permanent(tls: Tls) -> None:
    mailbox = Mailbox()
    _, message = message_for(make_meeting())
    with smtp_server(
        mailbox, tls_context=tls.server, require_starttls=True, authenticator=authenticate, auth_required=True
    ) as port:
        mailer = SmtpMailer("127.0.0.1", port, LOGIN, "wrong", starttls=True, timeout=5, tls_context=tls.client)
        with pytest.raises(UpstreamError) as caught:
            await mailer.send(message)
    assert caught.value.service == "SMTP"
    assert caught.value.permanent is True
    assert caught.value.status == 535
    assert "wrong" not in str(caught.value)
    assert mailbox.envelopes == []


async def test_untrusted_certificate_is_permanent(tls: Tls) -> None:
    _, message = message_for(make_meeting())
    with smtp_server(Mailbox(), tls_context=tls.server, require_starttls=True) as port:
        mailer = SmtpMailer("127.0.0.1", port, None, None, starttls=True, timeout=5)  # system CAs only
        with pytest.raises(UpstreamError) as caught:
            await mailer.send(message)
    assert caught.value.permanent is True
    assert "certificate" in str(caught.value)


async def test_auth_configured_but_server_offers_none_without_tls_is_permanent(tls: Tls) -> None:
    _, message = message_for(make_meeting())
    with smtp_server(Mailbox(), tls_context=tls.server, authenticator=authenticate, auth_required=True) as port:
        mailer = SmtpMailer("127.0.0.1", port, LOGIN, PASSWORD, starttls=False, timeout=5)  # AUTH only after STARTTLS
        with pytest.raises(UpstreamError) as caught:
            await mailer.send(message)
    assert caught.value.permanent is True


async def test_server_not_listening_is_transient() -> None:
    _, message = message_for(make_meeting())
    with pytest.raises(UpstreamError) as caught:
        await plain_mailer(free_port()).send(message)
    assert caught.value.permanent is False
    assert caught.value.status is None


async def test_server_that_never_greets_times_out_transiently() -> None:
    connected = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # says nothing until the client hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, message = message_for(make_meeting())
    try:
        with pytest.raises(UpstreamError) as caught:
            await SmtpMailer("127.0.0.1", port, None, None, starttls=False, timeout=0.3).send(message)
    finally:
        server.close()
        await server.wait_closed()
    assert connected.is_set()
    assert caught.value.permanent is False
    assert "in time" in str(caught.value)


def simple_message(*recipients: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = ", ".join(recipients)
    message["Subject"] = "test"
    message.set_content("hello")
    return message


@pytest.mark.parametrize(
    ("reply", "permanent"), [("550 5.1.1 No such user", True), ("451 4.3.0 Try again later", False)]
)
async def test_every_recipient_refused(reply: str, permanent: bool) -> None:
    mailbox = Mailbox(refuse_rcpt={"gone@example.com": reply})
    with smtp_server(mailbox) as port:
        with pytest.raises(UpstreamError) as caught:
            await plain_mailer(port).send(simple_message("gone@example.com"))
    assert caught.value.permanent is permanent
    assert caught.value.status == int(reply[:3])
    assert "gone@example.com" in str(caught.value)


async def test_some_recipients_refused_still_delivers_to_the_others() -> None:
    mailbox = Mailbox(refuse_rcpt={"gone@example.com": "550 5.1.1 No such user"})
    with smtp_server(mailbox) as port:
        await plain_mailer(port).send(simple_message("gone@example.com", "bob@example.com"))
    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == ["bob@example.com"]


@pytest.mark.parametrize(
    ("reply", "permanent"), [("554 5.6.0 Message rejected", True), ("452 4.3.1 Insufficient system storage", False)]
)
async def test_message_refused_after_data(reply: str, permanent: bool) -> None:
    with smtp_server(Mailbox(refuse_data=reply)) as port:
        with pytest.raises(UpstreamError) as caught:
            await plain_mailer(port).send(simple_message("bob@example.com"))
    assert caught.value.permanent is permanent
    assert caught.value.status == int(reply[:3])


# The shared relay fake (tests/fakes/smtp_server.py) broken and healed, as end-to-end tests do it ---


async def test_relay_refusing_the_recipients_with_550_is_permanent_in_its_words_then_heals() -> None:
    _, message = message_for(make_meeting())
    with smtp_inbox() as inbox:
        inbox.fail_with(550)
        with pytest.raises(UpstreamError) as caught:
            await plain_mailer(inbox.port).send(message)
        assert inbox.messages == []
        inbox.heal()
        await plain_mailer(inbox.port).send(message)
        [delivered] = inbox.messages
    error = caught.value
    assert (error.service, error.status, error.permanent) == ("SMTP", 550, True)
    assert "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in local recipient table" in str(
        error
    )
    assert len(inbox.refused) == 4  # every recipient was asked, and every one refused
    assert delivered["Message-ID"] == message["Message-ID"]


async def test_relay_refusing_the_login_with_535_is_permanent_then_heals() -> None:
    _, message = message_for(make_meeting())
    with smtp_inbox(login=(LOGIN, PASSWORD)) as inbox:
        mailer = SmtpMailer(inbox.host, inbox.port, LOGIN, PASSWORD, starttls=False, timeout=5)
        inbox.fail_with(535)  # the right password, refused: a rotated relay credential
        with pytest.raises(UpstreamError) as caught:
            await mailer.send(message)
        assert inbox.messages == []
        inbox.heal()
        await mailer.send(message)
        assert len(inbox.messages) == 1
    error = caught.value
    assert (error.status, error.permanent) == (535, True)
    assert str(error).endswith("refused the login 535 5.7.8 Authentication credentials invalid")
    assert PASSWORD not in str(error)


async def test_the_relay_fake_checks_the_login_it_was_given() -> None:
    _, message = message_for(make_meeting())
    with smtp_inbox(login=(LOGIN, PASSWORD)) as inbox:
        with pytest.raises(UpstreamError) as caught:
            await SmtpMailer(inbox.host, inbox.port, LOGIN, "wrong", starttls=False, timeout=5).send(message)
        assert (caught.value.status, caught.value.permanent) == (535, True)
        with pytest.raises(UpstreamError) as unauthenticated:
            await plain_mailer(inbox.port).send(message)  # no AUTH at all: 530 before MAIL
        assert unauthenticated.value.status == 530
        assert inbox.refused == [] and inbox.messages == []
    with smtp_inbox() as without_auth, pytest.raises(ValueError, match="offers no AUTH"):
        without_auth.fail_with(535)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (421, "answered 421 4.3.2 Service not available, closing transmission channel"),
        (451, "451 4.3.0 Requested action aborted: local error in processing"),
    ],
)
async def test_relay_answering_421_or_451_is_transient_then_heals(code: int, words: str) -> None:
    _, message = message_for(make_meeting())
    with smtp_inbox() as inbox:
        inbox.fail_with(code)
        for _ in range(2):  # an outage lasts: the retry is refused too
            with pytest.raises(UpstreamError) as caught:
                await plain_mailer(inbox.port).send(message)
            assert (caught.value.status, caught.value.permanent) == (code, False)
            assert words in str(caught.value)
        inbox.heal()
        await plain_mailer(inbox.port).send(message)
        assert len(inbox.messages) == 1


async def test_relay_refusing_the_message_after_data() -> None:
    _, message = message_for(make_meeting())
    with smtp_inbox() as inbox:
        inbox.fail_with(554, "5.7.1 Message rejected as spam", at="data")
        with pytest.raises(UpstreamError) as caught:
            await plain_mailer(inbox.port).send(message)
    assert (caught.value.status, caught.value.permanent) == (554, True)
    assert str(caught.value).endswith("answered 554 5.7.1 Message rejected as spam")


def test_one_persons_copy_goes_to_them_alone_with_a_message_id_of_its_own() -> None:
    meeting = make_meeting()
    ics = build_invite(meeting, method="REQUEST", now=NOW, description="Agenda")
    everyone = unique_attendees(meeting.attendees)

    def copy(person: Attendee) -> EmailMessage:
        return invite_message(
            meeting, ics, method="REQUEST", sender=SENDER, body_text="x", recipients=everyone, copy_for=person
        )

    bob, carol = copy(everyone[0]), copy(everyone[1])
    assert [a.addr_spec for a in bob["To"].addresses] == ["bob@example.com"] and bob["Cc"] is None
    assert bob["Reply-To"] is not None and "ingrid@example.com" in str(bob["Reply-To"])
    assert bob["Message-ID"] != carol["Message-ID"] != message_id(meeting.uid, 1, "REQUEST", SENDER)
    assert copy(everyone[0])["Message-ID"] == bob["Message-ID"], "the same copy again is the same message"
    assert bob["Message-ID"] == message_id(meeting.uid, 1, "REQUEST", SENDER, "BOB@example.com ")
