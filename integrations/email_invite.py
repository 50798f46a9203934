"""The review invitation as email (iMIP, RFC 6047) and an SMTP client that delivers it.

The message has the shape Google Calendar itself sends, which Gmail, Outlook (desktop and web) and
Apple Mail all turn into an invitation with Accept/Decline:

    multipart/mixed
      multipart/alternative
        text/plain                                        the body text, for people
        text/calendar; method=REQUEST; charset="UTF-8"    the iMIP part, for calendars
      application/ics; name="invite.ics"                  the same object as an attachment

* The `method` parameter of the text/calendar part equals the METHOD inside the object (RFC 6047
  §2.4); `invite_message` refuses an object whose METHOD differs.
* The iMIP part sits in a multipart/alternative that is the *first* child of the multipart/mixed:
  Outlook only looks for iMIP data there; the plain text is what clients without calendar support
  show instead.
* The attachment carries the same bytes for clients (and people) that only act on an .ics file.
  It is `application/ics`, not a second text/calendar part, so no client reads two iTIP messages
  out of one email.
* Both calendar parts are base64: the object's CRLF line ends and 75-octet folds reach the client
  byte for byte whatever relays do to long or non-ASCII text lines (Exchange sends its own
  text/calendar parts base64 too). The text part is 7bit, or quoted-printable when it is not
  ASCII, so the whole message is 7-bit and no relay needs 8BITMIME.

Recipients: To is every attendee the invite lists, one per address, as the caller passes them (the
activity builds the invite and its attendee list in postmortem.meeting, this module only mails what it
is given) — or, for one person's copy (`copy_for`: the activity sends each person their own, with the
report link signed for them), that person alone. The organizer, when not an attendee, is on Cc:
attendees' RSVPs (iMIP REPLY) go to the ORGANIZER address, and the organizer's mail client can
only match them to an event it has seen, so the organizer gets the invitation too. Reply-To is the
organizer, so a plain "reply" reaches a person rather than the sending mailbox.

Message-ID is derived from UID, SEQUENCE and METHOD (and the person, for a copy): sending the same revision again (a retried
activity) produces the same Message-ID, which mail systems use to drop duplicates, while each new
revision or the cancellation is a new message. Date is the object's DTSTAMP, so the whole message
is a function of its inputs.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formatdate, parseaddr
from zoneinfo import ZoneInfo

import aiosmtplib
from icalendar import Calendar

from postmortem.integrations.http_errors import UpstreamError
from postmortem.meeting.models import Attendee, Meeting
from postmortem.models import Language

SERVICE = "SMTP"
ATTACHMENT_NAME = "invite.ics"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MAX_DETAIL = 300
RECIPIENTS_REFUSED = "recipients-refused"  # UpstreamError.code: these addresses, not the relay, were refused

log = logging.getLogger(__name__)


def invite_message(
    meeting: Meeting,
    ics: bytes,
    *,
    method: str,
    sender: str,
    body_text: str,
    recipients: list[Attendee],
    copy_for: Attendee | None = None,
) -> EmailMessage:
    """The iMIP email for `ics` (as built by postmortem.meeting.invite.build_invite with the same method)
    to `recipients`: the attendees `ics` lists (postmortem.meeting.invite.unique_attendees).

    With `copy_for`, the message is that one person's copy (its link is theirs, so nobody else may read
    it): To is that person alone, nobody on Cc, and a Message-ID of its own."""
    if copy_for is not None:
        recipients = [copy_for]
    method = method.upper()
    calendar = Calendar.from_ical(ics)
    inner = str(calendar.get("METHOD", "")).upper()
    if inner != method:
        raise ValueError(f"the calendar object says METHOD:{inner or '(none)'} but the message is for {method}")

    message = EmailMessage()
    message["From"] = sender
    message["To"] = [_address(person) for person in recipients]
    organizer = meeting.organizer.email.strip().lower()
    if copy_for is None and organizer not in {person.email.strip().lower() for person in recipients}:
        message["Cc"] = _address(meeting.organizer)
    message["Reply-To"] = _address(meeting.organizer)
    message["Subject"] = subject(meeting, method)
    message["Date"] = _date(calendar)
    message["Message-ID"] = message_id(
        meeting.uid, meeting.sequence, method, sender, copy_for.email if copy_for is not None else None
    )

    # ASCII text goes as 7bit; anything else quoted-printable, so no relay needs 8BITMIME.
    message.set_content(body_text, cte=None if body_text.isascii() else "quoted-printable")
    message.add_alternative(
        ics, maintype="text", subtype="calendar", cte="base64", params={"method": method, "charset": "UTF-8"}
    )
    message.add_attachment(
        ics, maintype="application", subtype="ics", filename=ATTACHMENT_NAME, params={"name": ATTACHMENT_NAME}
    )
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # the email package adds it to parts; it belongs on the message only
    return message


def subject(meeting: Meeting, method: str) -> str:
    """ "Invitation: <title> @ Mon 30 Mar 2026 10:00-11:00 (Europe/Berlin)", or "Cancelled: ..." for CANCEL."""
    zone = ZoneInfo(meeting.timezone)
    start = meeting.start.astimezone(zone)
    end = meeting.end.astimezone(zone)
    chinese = meeting.language == Language.ZH
    day = _day_zh if chinese else _day
    when = f"{day(start)} {start:%H:%M}-"
    when += f"{end:%H:%M}" if end.date() == start.date() else f"{day(end)} {end:%H:%M}"
    title = " ".join(meeting.title.split())  # no line breaks in a header
    if chinese:  # the meeting's language, like its description (one voice)
        prefix = "已取消" if method.upper() == "CANCEL" else "会议邀请"
        return f"{prefix}：{title} @ {when}（{meeting.timezone}）"
    prefix = "Cancelled" if method.upper() == "CANCEL" else "Invitation"
    return f"{prefix}: {title} @ {when} ({meeting.timezone})"


def message_id(uid: str, sequence: int, method: str, sender: str, recipient: str | None = None) -> str:
    """The same <id@domain> for the same revision and method of the same event (and the same person's
    copy), every time."""
    seed = f"{uid}\x00{sequence}\x00{method.upper()}"
    if recipient is not None:
        seed += f"\x00{recipient.strip().casefold()}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:20]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "postmortem.invalid"
    # short enough that the header is not folded (a folded Message-ID confuses some threading)
    return f"<{method.lower()}-{sequence}-{digest}@{domain}>"


def delivery_message_id(key: str, sender: str) -> str:
    """The same <id@domain> for the same delivery key, every time (a resend is then the same message)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "postmortem.invalid"
    return f"<pm-{digest}@{domain}>"


def _address(person: Attendee) -> Address:
    return Address(display_name=person.name or "", addr_spec=person.email.strip())


def _day(value: datetime) -> str:
    return f"{_DAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1]} {value.year}"


def _day_zh(value: datetime) -> str:
    return f"{value.year}年{value.month}月{value.day}日（周{'一二三四五六日'[value.weekday()]}）"


def _date(calendar: Calendar) -> str:
    for event in calendar.walk("VEVENT"):
        stamp = event.get("DTSTAMP")
        if stamp is not None and isinstance(stamp.dt, datetime):
            value = stamp.dt if stamp.dt.tzinfo else stamp.dt.replace(tzinfo=UTC)
            return format_datetime(value.astimezone(UTC))
    return formatdate(usegmt=True)


class SmtpMailer:
    """Delivers messages through one SMTP relay (submission with STARTTLS and AUTH, or plain).

    Failures become UpstreamError("SMTP", ...): a 5xx reply, a refused login, a server without the
    STARTTLS or AUTH it is configured to use, or a certificate that does not verify will not get
    better by trying again (permanent); 4xx replies, refused or dropped connections and timeouts
    may (transient).
    """

    def __init__(
        self,
        host: str,
        port: int = 587,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 30.0,
        *,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username or None
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._tls_context = tls_context

    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` to the recipients in its To/Cc/Bcc headers."""
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=(self._password or "") if self._username else None,
                start_tls=self._starttls,
                use_tls=False,
                timeout=self._timeout,
                tls_context=self._tls_context,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:  # OSError covers TimeoutError and ssl
            raise self._error(exc) from exc
        if refused:
            # Some recipients were taken, so the message went out: a retry would resend it to them.
            log.warning(
                "SMTP %s:%s refused some recipients of %s: %s",
                self.host,
                self.port,
                message.get("Message-ID"),
                "; ".join(f"{rcpt} ({answer.code} {answer.message})" for rcpt, answer in refused.items()),
            )

    def _error(self, exc: BaseException) -> UpstreamError:
        where = f"{self.host}:{self.port}"
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            codes = [refusal.code for refusal in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {_shorten(r.message)}" for r in exc.recipients)
            permanent = bool(codes) and all(500 <= code < 600 for code in codes)
            status = codes[0] if len(set(codes)) == 1 else None
            return UpstreamError(
                SERVICE,
                status,
                f"SMTP {where} refused every recipient: {detail}",
                permanent=permanent,
                code=RECIPIENTS_REFUSED,
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            what = "refused the login" if isinstance(exc, aiosmtplib.SMTPAuthenticationError) else "answered"
            return UpstreamError(
                SERVICE,
                exc.code,
                f"SMTP {where} {what} {exc.code} {_shorten(exc.message)}".rstrip(),
                permanent=500 <= exc.code < 600,
            )
        if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
            return UpstreamError(SERVICE, None, f"SMTP {where} did not answer in time", permanent=False)
        if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ssl.SSLCertVerificationError):
                return self._error(cause)
            return UpstreamError(
                SERVICE, None, f"SMTP {where} could not be reached: {_shorten(str(exc))}", permanent=False
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return UpstreamError(
                SERVICE,
                None,
                f"SMTP {where} has a certificate that does not verify: {_shorten(str(exc))}",
                permanent=True,
            )
        if isinstance(exc, aiosmtplib.SMTPException | ValueError):
            # No STARTTLS or AUTH where configured, an address that cannot go on a command line, ...
            return UpstreamError(SERVICE, None, f"SMTP {where}: {_shorten(str(exc))}", permanent=True)
        if isinstance(exc, OSError):  # refused connection, TLS broken mid-handshake, DNS
            return UpstreamError(
                SERVICE,
                None,
                f"SMTP {where} could not be reached: {_shorten(str(exc) or type(exc).__name__)}",
                permanent=False,
            )
        return UpstreamError(
            SERVICE, None, f"SMTP {where} failed: {type(exc).__name__}: {_shorten(str(exc))}", permanent=True
        )


def _shorten(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
