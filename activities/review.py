"""Steps of the review: record each transition, publish (exports + announcement), and notify people.

Every outside message has a deterministic key recorded in the delivery log, checked before
sending, so a retried step never announces or reminds twice.
"""

from __future__ import annotations

import httpx
from pydantic import AwareDatetime, BaseModel, Field
from temporalio import activity

from postmortem.activities.upstream import activity_error
from postmortem.config import HttpSettings, ReportSettings, ServerSettings, SlackSettings, SmtpSettings, reveal
from postmortem.integrations.email_invite import SmtpMailer
from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.slack_api import SlackClient
from postmortem.report.export_pdf import export_pdf
from postmortem.report.exports import export_html, export_json, export_markdown
from postmortem.report.public_summary import public_summary
from postmortem.review.lifecycle import Review
from postmortem.store.store import Store

EXPORTS = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
    "public": "text/markdown; charset=utf-8",
}


class RecordReviewInput(BaseModel):
    postmortem_id: str
    review: Review
    now: AwareDatetime


class PublishInput(BaseModel):
    postmortem_id: str
    published_count: int
    public_slug: str | None = None
    slack_channel: str | None = None
    now: AwareDatetime


class NotifyInput(BaseModel):
    postmortem_id: str
    key: str = Field(description="deterministic: the same reminder is never sent twice")
    recipients: list[str]
    subject: str
    text: str
    slack_channel: str | None = None
    now: AwareDatetime


class NotifyResult(BaseModel):
    sent: list[str]


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
    ) -> None:
        self._store = store
        self._smtp = smtp or SmtpSettings()
        self._slack_settings = slack or SlackSettings()
        self._redact = (report or ReportSettings()).public_redact_patterns
        self._public_url = (server or ServerSettings()).resolved_public_url
        self._timeout = (http or HttpSettings()).timeout_seconds

    @activity.defn(name="record_review")
    async def record_review(self, input: RecordReviewInput) -> None:
        await self._store.review.save(input.postmortem_id, input.review, input.now)

    @activity.defn(name="publish_report")
    async def publish_report(self, input: PublishInput) -> list[str]:
        """Render and store the final exports, then announce once per publication."""
        pm = await self._store.postmortems.get(input.postmortem_id)
        meeting = await self._store.meetings.get(input.postmortem_id)
        redact = self._redact
        rendered = {
            "md": export_markdown(pm, meeting).encode(),
            "html": export_html(pm, meeting).encode(),
            "json": export_json(pm, meeting),
            "pdf": export_pdf(pm, meeting),
            "public": public_summary(pm, redact=redact).encode(),
        }
        for format, content in rendered.items():
            await self._store.review.put_export(
                pm.id,
                format,
                EXPORTS[format],
                content,
                input.published_count,
                input.now,
                slug=input.public_slug if format == "public" else None,
            )
        sent: list[str] = []
        if input.slack_channel:
            key = f"{pm.id}:announce:{input.published_count}"
            text = f"Post-mortem published: *{pm.title}* ({pm.severity or 'no severity'}) — {self._public_url}/api/postmortems/{pm.id}/export?format=html"
            if await self._slack(pm.id, key, input.slack_channel, text, input.now):
                sent.append(key)
        return sent

    @activity.defn(name="notify")
    async def notify(self, input: NotifyInput) -> NotifyResult:
        sent: list[str] = []
        if input.slack_channel and await self._slack(
            input.postmortem_id, f"{input.key}:slack", input.slack_channel, f"{input.subject}\n{input.text}", input.now
        ):
            sent.append("slack")
        if self._smtp.host and input.recipients and await self._email(input):
            sent.append("email")
        return NotifyResult(sent=sent)

    async def _slack(self, postmortem_id: str, key: str, channel: str, text: str, now: object) -> bool:
        meetings = self._store.meetings
        token = reveal(self._slack_settings.bot_token)
        if not token or await meetings.delivered(key):
            return False
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            try:
                answer = await SlackClient(self._slack_settings.api_url, token, http).post_message(channel, text)
            except UpstreamError as exc:
                raise activity_error(exc) from exc
        await meetings.record_delivery(key, postmortem_id, "slack", f"ts {answer.get('ts')}", now)  # type: ignore[arg-type]
        return True

    async def _email(self, input: NotifyInput) -> bool:
        from email.message import EmailMessage

        key = f"{input.key}:email"
        if await self._store.meetings.delivered(key):
            return False
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = ", ".join(input.recipients)
        message["Subject"] = input.subject
        message.set_content(input.text)
        mailer = SmtpMailer(
            self._smtp.host or "",
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
        await self._store.meetings.record_delivery(key, input.postmortem_id, "email", input.subject, input.now)
        return True
