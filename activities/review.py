"""Steps of the review: record each transition, publish (exports + announcement), and notify people.

Every outside message has a deterministic key recorded in the delivery log, checked before
sending, so a retried step never announces or reminds twice.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import httpx
from pydantic import AwareDatetime, BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from postmortem.activities.clients import OutsideClients
from postmortem.activities.page_links import PageLinks
from postmortem.activities.upstream import activity_error
from postmortem.config import (
    HttpSettings,
    ReportSettings,
    ServerSettings,
    SlackSettings,
    SmtpSettings,
    WebSettings,
    reveal,
)
from postmortem.integrations.email_invite import SmtpMailer, delivery_message_id
from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.slack_api import SlackClient
from postmortem.models import Status
from postmortem.report.export_pdf import export_pdf
from postmortem.report.exports import export_html, export_json, export_markdown
from postmortem.report.public_summary import public_summary
from postmortem.review.lifecycle import Review
from postmortem.review.notices import ENGLISH, NoticeKind, Say, Voice
from postmortem.store.errors import NotFound
from postmortem.store.store import Store

EXPORTS = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
    "public": "text/markdown; charset=utf-8",
}

KEEPS_EXPORTS = (Status.PUBLISHED, Status.ARCHIVED)

DELIVERY_EVENT = "postmortem_delivery"  # the Slack metadata event type that carries a message's key
# How far before our record of an interrupted attempt its post may carry Slack's timestamp (clock skew).
ATTEMPT_CLOCK_SLACK = timedelta(minutes=10)


class RecordReviewInput(BaseModel):
    postmortem_id: str
    review: Review
    now: AwareDatetime


class PublishInput(BaseModel):
    postmortem_id: str
    published_count: int
    public_slug: str | None = None
    slack_channel: str | None = None
    version: int | None = Field(default=None, description="the approved document version; None: the current one")
    now: AwareDatetime


class NotifyInput(BaseModel):
    postmortem_id: str
    key: str = Field(description="deterministic: the same reminder is never sent twice")
    recipients: list[str]
    subject: str = Field(description="in English; `subject_says`, when set, is what is sent")
    text: str
    slack_channel: str | None = None
    now: AwareDatetime
    # The message in the report's language (postmortem.review.notices); None in histories from before it.
    subject_says: Say | None = None
    says: list[Say] = Field(default_factory=list, description="the text, one line each, when `subject_says` is set")


class NotifyResult(BaseModel):
    sent: list[str]


class PeopleNoticeInput(BaseModel):
    """A message to people, chosen by the workflow from ids, people and kinds only: the title, the
    subject and each person's signed link are the activity's (the signing secret never enters history)."""

    postmortem_id: str
    key: str = Field(description="deterministic per event; each person's email is `<key>:email:<person>`")
    kind: NoticeKind
    topic: str | None = Field(
        default=None, description="said in the subject after the title, e.g. what a reminder is about"
    )
    recipients: list[str]
    lines: list[str] = Field(description="the message in English, one line each (a folded reminder has several)")
    mentions: list[str] = Field(default_factory=list, description="Slack member mentions for the channel post")
    slack_channel: str | None = None
    now: AwareDatetime
    # The message as words of postmortem.review.notices, written when sent in the report's language and
    # zone (so it follows a report switched since). Empty in histories from before them: `lines` and
    # `topic` are sent as they are, in English.
    says: list[Say] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list, description="the subject's topics, as keys of the same table")


class Messenger:
    """Slack and email to people, each message once: its key is checked in the delivery log before sending."""

    def __init__(
        self,
        store: Store,
        *,
        smtp: SmtpSettings,
        slack: SlackSettings,
        timeout: float,
        clients: OutsideClients | None = None,
    ) -> None:
        """`clients`: the worker's shared Slack client and SMTP mailer; without them (tests, scripts) a
        message builds its own."""
        self._store = store
        self._smtp = smtp
        self._slack = slack
        self._timeout = timeout
        self._clients = clients or OutsideClients()

    @classmethod
    def from_settings(
        cls,
        store: Store,
        smtp: SmtpSettings | None,
        slack: SlackSettings | None,
        http: HttpSettings | None,
        clients: OutsideClients | None = None,
    ) -> Messenger:
        """The one way an activity class builds its messenger from its (optional) settings sections."""
        return cls(
            store,
            smtp=smtp or SmtpSettings(),
            slack=slack or SlackSettings(),
            timeout=(http or HttpSettings()).timeout_seconds,
            clients=clients,
        )

    @property
    def email_configured(self) -> bool:
        return bool(self._smtp.host)

    async def slack(self, postmortem_id: str, key: str, channel: str, text: str, now: datetime) -> bool:
        """Post `text` to `channel`; False when Slack is not configured or `key` was delivered already.

        The post carries `key` in its metadata. After an attempt that never heard back (a worker killed
        between Slack's "ok" and our record of it) the channel is asked first, so it is posted once."""
        meetings = self._store.meetings
        token = reveal(self._slack.bot_token)
        if not token or await meetings.delivered(key):
            return False
        earlier = await meetings.begin_delivery(key, postmortem_id, "slack", datetime.now(UTC))
        shared = self._clients.slack
        async with contextlib.nullcontext(shared) if shared else httpx.AsyncClient(timeout=self._timeout) as http:
            client = SlackClient(self._slack.api_url, token, http)
            try:
                if earlier is not None:
                    since = (earlier - ATTEMPT_CLOCK_SLACK).timestamp()
                    ts = await client.find_posted(channel, DELIVERY_EVENT, key, since)
                    if ts is not None:
                        await meetings.record_delivery(key, postmortem_id, "slack", f"ts {ts} (found)", now)
                        return True
                metadata = {"event_type": DELIVERY_EVENT, "event_payload": {"key": key}}
                answer = await client.post_message(channel, text, metadata=metadata)
            except UpstreamError as exc:
                raise activity_error(exc) from exc
        await meetings.record_delivery(key, postmortem_id, "slack", f"ts {answer.get('ts')}", now)
        return True

    async def email(
        self, postmortem_id: str, key: str, recipients: list[str], subject: str, text: str, now: datetime
    ) -> bool:
        """Mail `text` to `recipients`; False when SMTP is not configured or `key` was delivered already.

        SMTP cannot be asked afterwards whether a message arrived, so a send interrupted between the
        relay's "250" and our record is sent again, as the very same message: its Message-ID and Date
        come from `key` and `now`, and mail systems drop a repeated Message-ID."""
        if not self._smtp.host or not recipients or await self._store.meetings.delivered(key):
            return False
        await self._store.meetings.begin_delivery(key, postmortem_id, "email", datetime.now(UTC))
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = delivery_message_id(key, self._smtp.sender)
        message.set_content(text)
        mailer = self._clients.smtp or SmtpMailer(
            self._smtp.host,
            self._smtp.port,
            self._smtp.username,
            reveal(self._smtp.password),
            self._smtp.starttls,
            self._timeout,
        )
        try:
            await mailer.send(message)
        except UpstreamError as exc:
            raise activity_error(exc) from exc
        await self._store.meetings.record_delivery(key, postmortem_id, "email", subject, now)
        return True


class ReviewActivities:
    def __init__(
        self,
        store: Store,
        *,
        smtp: SmtpSettings | None = None,
        slack: SlackSettings | None = None,
        report: ReportSettings | None = None,
        server: ServerSettings | None = None,
        http: HttpSettings | None = None,
        web: WebSettings | None = None,
        clients: OutsideClients | None = None,
    ) -> None:
        self._store = store
        self._redact = (report or ReportSettings()).public_redact_patterns
        self._links = PageLinks(store, server, web)
        self._messenger = Messenger.from_settings(store, smtp, slack, http, clients)

    @activity.defn(name="record_review")
    async def record_review(self, input: RecordReviewInput) -> None:
        await self._store.review.save(input.postmortem_id, input.review, input.now)

    @activity.defn(name="publish_report")
    async def publish_report(self, input: PublishInput) -> list[str]:
        """Render and store the final exports of the approved version, then announce once per publication.

        A publication the lifecycle has moved past (unpublished, or published again since) writes
        nothing: a late retry must not put back the exports an unpublish withdrew. An archive made
        before this step ran keeps the publication, as archiving does.
        """
        try:
            review = await self._store.review.get(input.postmortem_id)
        except NotFound:
            return []  # deleted meanwhile: nothing to publish
        if review.status not in KEEPS_EXPORTS or review.published_count != input.published_count:
            activity.logger.info(
                "publication %s of %s is superseded (now %s, %s): nothing written",
                input.published_count,
                input.postmortem_id,
                review.status.value,
                review.published_count,
            )
            return []
        store = self._store.postmortems
        try:
            pm = await (
                store.get(input.postmortem_id)
                if input.version is None
                else store.revision(input.postmortem_id, input.version)
            )
        except NotFound as exc:  # the approved version is not there: retrying cannot bring it back
            raise ApplicationError(str(exc), type="NotFound", non_retryable=True) from exc
        meeting = await self._store.meetings.get(input.postmortem_id)
        redact = self._redact
        rendered = {
            "md": export_markdown(pm, meeting).encode(),
            "html": export_html(pm, meeting).encode(),
            "json": export_json(pm),
            "pdf": export_pdf(pm, meeting),
            "public": public_summary(pm, redact=redact).encode(),
        }
        await self._store.review.put_exports(
            pm.id,
            [
                (format, EXPORTS[format], content, input.public_slug if format == "public" else None)
                for format, content in rendered.items()
            ],
            input.published_count,
            input.now,
        )
        sent: list[str] = []
        if input.slack_channel:
            key = f"{pm.id}:announce:{input.published_count}"
            voice = Voice.of(pm)
            severity = pm.severity.value if pm.severity else voice.words("no_severity")
            text = voice.words("announced", title=pm.title, severity=severity, link=self._links.page(pm.id))
            if await self._messenger.slack(pm.id, key, input.slack_channel, text, input.now):
                sent.append(key)
        return sent

    @activity.defn(name="notify")
    async def notify(self, input: NotifyInput) -> NotifyResult:
        sent: list[str] = []
        messenger = self._messenger
        subject, body = await self._written(input)
        text = f"{subject}\n{body}\n{self._links.page(input.postmortem_id)}"
        email_text = f"{body}\n\n{await self._links.for_people(input.postmortem_id, input.recipients, input.now)}"
        failed: ApplicationError | None = None
        try:
            if input.slack_channel and await messenger.slack(
                input.postmortem_id, f"{input.key}:slack", input.slack_channel, text, input.now
            ):
                sent.append("slack")
        except ApplicationError as exc:  # the email still goes; the failure is raised after it
            failed = exc
        try:
            if await messenger.email(
                input.postmortem_id, f"{input.key}:email", input.recipients, subject, email_text, input.now
            ):
                sent.append("email")
        except ApplicationError as exc:
            failed = failed or exc
        if failed is not None:  # the retry re-sends only what did not go (delivery keys)
            raise failed
        return NotifyResult(sent=sent)

    @activity.defn(name="notify_people")
    async def notify_people(self, input: PeopleNoticeInput) -> NotifyResult:
        """One email per person (its own key, their own signed link) and one post to the team's channel
        (the plain page link: a channel has many readers). A retry sends only what did not go."""
        try:
            pm = await self._store.postmortems.get(input.postmortem_id)
        except NotFound:
            return NotifyResult(sent=[])  # deleted meanwhile: nobody to tell about it
        if input.says:  # in the report's language and zone, as the report is now
            voice = Voice.of(pm)
            subject = voice.subject(input.kind, pm.title, voice.topics(input.topics))
            text = "\n".join(voice.say(line, title=pm.title) for line in input.says)
        else:  # scheduled before the words were ours to choose: its English lines, all of it in English
            voice = ENGLISH
            subject = voice.subject(input.kind, pm.title, [input.topic] if input.topic else [])
            text = "\n".join(input.lines)
        messenger = self._messenger
        sent: list[str] = []
        failed: ApplicationError | None = None
        if input.slack_channel:
            post = f"{subject}\n{' '.join([*input.mentions, text])}\n{self._links.page(input.postmortem_id)}"
            try:
                if await messenger.slack(
                    input.postmortem_id, f"{input.key}:slack", input.slack_channel, post, input.now
                ):
                    sent.append("slack")
            except ApplicationError as exc:  # the emails still go; the failure is raised after them
                failed = exc
        for person in dict.fromkeys(input.recipients):
            link = await self._links.for_people(input.postmortem_id, [person], input.now)
            body = f"{text}\n\n{voice.words('open', link=link)}\n"
            try:
                if await messenger.email(
                    input.postmortem_id, f"{input.key}:email:{person}", [person], subject, body, input.now
                ):
                    sent.append(f"email:{person}")
            except ApplicationError as exc:
                failed = failed or exc
        if failed is not None:  # the retry re-sends only what did not go (delivery keys)
            raise failed
        return NotifyResult(sent=sent)

    async def _written(self, input: NotifyInput) -> tuple[str, str]:
        """The subject and text of `input`: in the report's language when the workflow said it in words
        of ours (`subject_says`), else as the workflow wrote them (histories from before)."""
        if input.subject_says is None:
            return input.subject, input.text
        try:
            pm = await self._store.postmortems.get(input.postmortem_id)
        except NotFound:
            return input.subject, input.text
        voice = Voice.of(pm)
        text = "\n".join(voice.say(line, title=pm.title) for line in input.says)
        return voice.say(input.subject_says, title=pm.title), text
