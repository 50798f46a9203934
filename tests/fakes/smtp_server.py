"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for invite tests."""

from __future__ import annotations

import contextlib
import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support import free_port


@dataclass
class Inbox:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # aiosmtpd's hook
        assert isinstance(envelope.content, bytes)  # the controller does not decode: the message as sent
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def invites(self) -> list[tuple[EmailMessage, list[str]]]:
        """The messages that carry a calendar invite (not reminders), with their envelope recipients."""
        return [
            (message, rcpt)
            for message, rcpt in zip(self.messages, self.recipients, strict=True)
            if any(p.get_content_type() == "text/calendar" for p in message.walk())
        ]

    def calendars(self) -> list[str]:
        """The text/calendar part of every invite received, in order."""
        return [
            next(p for p in message.walk() if p.get_content_type() == "text/calendar").get_content()
            for message, _ in self.invites()
        ]


@contextlib.contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    inbox = Inbox(port=free_port())
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
