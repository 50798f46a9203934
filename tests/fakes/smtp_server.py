"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for invite tests.

    with smtp_inbox() as inbox:                          # plain SMTP, no AUTH, on inbox.host:inbox.port
    with smtp_inbox(login=("mailer", "s3cret")) as inbox:   # AUTH (PLAIN/LOGIN, no TLS) required

Outages, until `inbox.heal()`: `inbox.fail_with(code)` makes the relay answer `code` where a real one
does, in the wording of the RFCs (and Postfix), so the client sees the reply it would in production:

* `fail_with(550)`: every RCPT TO answers "550 5.1.1 <addr>: Recipient address rejected: User unknown
  in local recipient table" (Postfix's words; RFC 5321 §4.2.2 550 mailbox unavailable, RFC 3463 5.1.1);
* `fail_with(535)`: AUTH answers "535 5.7.8 Authentication credentials invalid" (RFC 4954 §6), even
  for the right password; needs `smtp_inbox(login=...)`: a relay without AUTH never says 535;
* `fail_with(421)`: MAIL FROM answers "421 4.3.2 Service not available, closing transmission channel"
  (RFC 5321 §4.2.3) and the server hangs up, as RFC 5321 §3.8 has it;
* `fail_with(451)`: every RCPT TO answers "451 4.3.0 Requested action aborted: local error in
  processing" (RFC 5321 §4.2.3);
* any other code, with `text=` and `at="auth" | "mail" | "rcpt" | "data"` to choose the words and the
  command that gets them.

`inbox.refused` lists every reply the outage gave, so a test can tell the relay was really asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support import free_port

Stage = Literal["auth", "mail", "rcpt", "data"]
# code -> (the command it answers, the text after the code); "{address}" is the recipient
_REPLIES: dict[int, tuple[Stage, str]] = {
    550: ("rcpt", "5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"),
    535: ("auth", "5.7.8 Authentication credentials invalid"),
    421: ("mail", "4.3.2 Service not available, closing transmission channel"),
    451: ("rcpt", "4.3.0 Requested action aborted: local error in processing"),
}


@dataclass(frozen=True)
class SmtpOutage:
    code: int
    text: str
    at: Stage
    only: frozenset[str] | None = None  # the addresses refused (at RCPT); None: every command at `at`


@dataclass
class Inbox:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    login: tuple[str, str] | None = None  # AUTH required with these credentials (smtp_inbox(login=...))
    outage: SmtpOutage | None = None  # fail_with(...) / heal()
    refused: list[str] = field(default_factory=list)  # every reply the outage gave

    def fail_with(
        self, code: int, text: str | None = None, *, at: Stage | None = None, only: list[str] | None = None
    ) -> None:
        """Answer `code` from now on at the command a real relay answers it (see the module docstring);
        with `only`, just for those recipients (an unknown mailbox), at RCPT."""
        default_at, default_text = _REPLIES.get(code, ("rcpt", "Requested action not taken"))
        stage = "rcpt" if only is not None else at or default_at
        if stage == "auth" and self.login is None:
            raise ValueError("this relay offers no AUTH, so it cannot refuse a login: use smtp_inbox(login=...)")
        self.outage = SmtpOutage(code, text or default_text, stage, frozenset(only) if only is not None else None)

    def heal(self) -> None:
        """Deliver again."""
        self.outage = None

    def _refusal(self, stage: Stage, address: str = "") -> str | None:
        if self.outage is None or self.outage.at != stage:
            return None
        if self.outage.only is not None and address not in self.outage.only:
            return None
        reply = f"{self.outage.code} {self.outage.text.replace('{address}', address)}"
        self.refused.append(reply)
        return reply

    async def handle_MAIL(  # aiosmtpd's hook
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        refused = self._refusal("mail")
        if refused is not None:
            if refused.startswith("421"):  # "closing transmission channel": the reply goes out, then the line
                transport = server.transport
                if transport is not None:
                    asyncio.get_running_loop().call_soon(transport.close)
            return refused
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # aiosmtpd's hook
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refused = self._refusal("rcpt", address)
        if refused is not None:
            return refused
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # aiosmtpd's hook
        refused = self._refusal("data")
        if refused is not None:
            return refused
        assert isinstance(envelope.content, bytes)  # the controller does not decode: the message as sent
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> Any:
        """aiosmtpd's authenticator: the configured login, unless the outage refuses every login."""
        refused = self._refusal("auth")
        if refused is not None:
            return AuthResult(success=False, handled=False, message=refused)
        ok = (
            self.login is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == self.login[0].encode()
            and auth_data.password == self.login[1].encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

    def invites(self) -> list[tuple[EmailMessage, list[str]]]:
        """The messages that carry a calendar invite (not reminders), with their envelope recipients."""
        return [
            (message, rcpt)
            for message, rcpt in zip(self.messages, self.recipients, strict=True)
            if any(p.get_content_type() == "text/calendar" for p in message.walk())
        ]

    def invite_revisions(self) -> int:
        """How many revisions of a meeting's invite arrived (UID, SEQUENCE, METHOD): each person gets a
        copy of their own, and a second copy of one revision to the same person fails here."""
        reached: dict[tuple[str, ...], list[str]] = {}
        for message, recipients in self.invites():
            ics = next(p for p in message.walk() if p.get_content_type() == "text/calendar").get_content()
            unfolded = re.sub(r"\r?\n[ \t]", "", ics)
            key = tuple(
                (found[1] if (found := re.search(rf"^{name}:(.*?)\r?$", unfolded, re.MULTILINE)) else "")
                for name in ("UID", "SEQUENCE", "METHOD")
            )
            people = reached.setdefault(key, [])
            for person in recipients:
                assert person not in people, f"{person} got revision {key} twice"
                people.append(person)
        return len(reached)

    def calendars(self) -> list[str]:
        """The text/calendar part of every invite received, in order."""
        return [
            next(p for p in message.walk() if p.get_content_type() == "text/calendar").get_content()
            for message, _ in self.invites()
        ]


class _Controller(Controller):
    """aiosmtpd's Controller, without its warning that AUTH without TLS is unsafe (it is loopback)."""

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


@contextlib.contextmanager
def smtp_inbox(*, login: tuple[str, str] | None = None) -> Iterator[Inbox]:
    """An aiosmtpd relay on loopback; `login` makes AUTH required (offered without TLS, for tests)."""
    inbox = Inbox(port=free_port(), login=login)
    auth: dict[str, Any] = {}
    if login is not None:
        auth = {"authenticator": inbox.authenticate, "auth_required": True, "auth_require_tls": False}
    controller = _Controller(inbox, hostname=inbox.host, port=inbox.port, **auth)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
