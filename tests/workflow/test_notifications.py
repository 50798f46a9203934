"""Notifications with links (notify-v2) on the time-skipping server, through real SMTP (aiosmtpd) and
the loopback Slack: review requested, changes requested, an @mention, approved and published, each
once per person, the report's title in the subject, a Date header and that person's signed link; and
the reminders a backfilled report is already late for, folded into one message per person."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from postmortem.models import Language, Status
from postmortem.report.formatting import format_local
from postmortem.review import signed_links
from postmortem.review.lifecycle import Actor
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from postmortem.workflows.inputs import (
    CommentPosted,
    DecisionRequest,
    ReviewersRequest,
    SubmitRequest,
    TransitionRequest,
)
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.support import eventually
from tests.workflow.harness import ADMIN, ALICE, BOB, CHANNEL, EDITOR, World, drafted, world

CAROL = Actor(name="carol@example.com", role="reviewer")
OWNER = "owner@example.com"
LINK = re.compile(r"https://pm\.example\.com/postmortems/(?P<id>[^?\s]+)\?t=(?P<token>\S+)")


def notifications(report: World) -> list[EmailMessage]:
    """Every email but the meeting's invites."""
    return [m for m in report.inbox.messages if not any(p.get_content_type() == "text/calendar" for p in m.walk())]


async def check_each(report: World, mails: list[EmailMessage]) -> None:
    """The title in the subject, a Date header, and a signed link that opens this report as the
    addressee (and no other report)."""
    title = (await report.store.postmortems.get(report.postmortem_id)).title
    secret = await report.store.secrets.get_or_create(signed_links.STORED_SECRET, datetime.now(UTC))
    for mail in mails:
        assert title in str(mail["Subject"]) and report.postmortem_id not in str(mail["Subject"]), mail["Subject"]
        assert parsedate_to_datetime(str(mail["Date"])).tzinfo is not None
        [link] = LINK.finditer(mail.get_content())
        assert link["id"] == report.postmortem_id
        now = datetime.now(UTC)
        assert signed_links.verify(secret, link["token"], report.postmortem_id, now) == str(mail["To"])
        with pytest.raises(signed_links.LinkRefused):
            signed_links.verify(secret, link["token"], "pagerduty-OTHER", now)


def told(mails: list[EmailMessage]) -> Counter[tuple[str, str]]:
    """(what the subject says before the title, to whom): how many times."""
    return Counter((str(m["Subject"]).split(":")[0], str(m["To"])) for m in mails)


async def test_each_decision_tells_each_person_once_with_their_own_link(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store
) -> None:
    async with world(time_skipping_env, sqlite_store) as report:
        await drafted(report)
        await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name, BOB.name]))
        await report.update(
            PostmortemWorkflow.change_reviewers,
            ReviewersRequest(actor=EDITOR, reviewers=[ALICE.name, BOB.name, CAROL.name]),
        )
        mention = CommentPosted(
            comment_id="c-1", by=ALICE.name, section="root_cause", mentions=[BOB.name, ALICE.name], excerpt="TTL?"
        )
        await report.handle.signal(PostmortemWorkflow.comment_posted, mention)
        await report.handle.signal(PostmortemWorkflow.comment_posted, mention)  # the API's signal, twice
        await report.update(
            PostmortemWorkflow.request_changes, DecisionRequest(actor=ALICE, comment="Root cause is too vague")
        )
        await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
        published = await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
        assert published.status == Status.PUBLISHED
        await report.update(PostmortemWorkflow.archive, TransitionRequest(actor=ADMIN))
        assert (await report.handle.result()).status == Status.ARCHIVED  # every step of the loop done

        mails = notifications(report)
        assert told(mails) == {
            ("Review requested", ALICE.name): 2,  # submitted twice
            ("Review requested", BOB.name): 1,
            ("Review requested", CAROL.name): 1,  # added later, asked once
            ("You were mentioned", BOB.name): 1,  # the author is not told of their own mention
            ("Changes requested", OWNER): 1,
            ("Changes requested", EDITOR.name): 1,  # who submitted it; not ALICE who asked
            ("Approved and published", OWNER): 1,
            ("Approved and published", ALICE.name): 1,
        }, told(mails)
        await check_each(report, mails)
        changes = next(m for m in mails if str(m["Subject"]).startswith("Changes requested"))
        assert "Root cause is too vague" in changes.get_content()
        assert not [p for p in await report.store.problems.list(report.postmortem_id)]

        # The channel: one post per message (not per person), the plain page link, never a signed one.
        posts = [m["text"] for m in report.slack.posted if m["channel"] == CHANNEL]
        assert all("?t=" not in text for text in posts)
        kinds = Counter(text.split(":")[0] for text in posts)
        assert kinds["Review requested"] == 3 and kinds["Changes requested"] == 1 and kinds["You were mentioned"] == 1
        assert kinds["Approved and published"] == 0 and len(report.announcements()) == 1


async def _past_reminding(handle: WorkflowHandle[Any, Any]) -> bool:
    """A reminder activity completed and the loop went round after it (a second message due in the
    same second would be scheduled by then)."""
    events = (await handle.fetch_history()).events
    reminded = [
        i
        for i, e in enumerate(events)
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name in ("notify_people", "notify")
    ]
    if not reminded:
        return False
    after = events[reminded[-1] :]
    done = next((i for i, e in enumerate(after) if e.HasField("activity_task_completed_event_attributes")), None)
    return done is not None and any(e.HasField("workflow_task_completed_event_attributes") for e in after[done:])


async def test_reminders_already_due_for_a_backfilled_report_are_one_message(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store
) -> None:
    """Resolved 20 days ago: submitting (48 h) and the publication deadline (14 days) are both late, and
    the meeting just planned is less than a day away: three reminders due at once, one message."""
    resolved = datetime.now(UTC) - timedelta(days=20)
    async with world(time_skipping_env, sqlite_store, resolved_at=resolved) as report:
        await eventually(lambda: _past_reminding(report.handle), timeout=30)
        reminders = [m for m in notifications(report) if str(m["Subject"]).startswith("Reminder:")]
        [mail] = reminders
        assert str(mail["To"]) == OWNER
        assert "(submit the draft, publication deadline, meeting)" in str(mail["Subject"])
        text = mail.get_content()
        assert "has not been submitted" in text and "not published 14 days after resolution" in text
        assert "review meeting is at" in text
        await check_each(report, reminders)
        [post] = [m["text"] for m in report.slack.posted if m["text"].startswith("Reminder:")]
        assert "<@U0OWNER>" in post and "has not been submitted" in post and "not published 14 days" in post
        keys = [k for k, _ in await report.store.meetings.deliveries(report.postmortem_id) if ":remind:" in k]
        base = f"{report.postmortem_id}:remind:submit:0+deadline:0+meeting:"
        assert len(keys) == 2 and all(k.startswith(base) for k in keys), keys
        assert {k.rsplit(":", 2)[-2] if "email" in k else k.rsplit(":", 1)[-1] for k in keys} == {"email", "slack"}


SUBJECT_WORDS = {
    Language.EN: ("Review requested", "You were mentioned", "Changes requested", "Reminder", "Approved and published"),
    Language.ZH: ("请评审", "有人提到了你", "需要修改", "提醒", "已批准并发布"),
}
# What may stay Latin in a Chinese message: addresses, links, Slack mentions, zone abbreviations, a severity.
NOT_WORDS = re.compile(r"https?://\S+|[\w.+-]+@[\w.-]+|<@\w+>")
LATIN_ALLOWED = {"CST", "UTC", "SEV"}


def english_in(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]{2,}", NOT_WORDS.sub(" ", text))) - LATIN_ALLOWED


def channel_posts(report: World) -> list[str]:
    return [m["text"] for m in report.slack.posted if m["channel"] == CHANNEL]


def mails_where(report: World, keep: Callable[[EmailMessage], bool]) -> Callable[[], Awaitable[list[EmailMessage]]]:
    async def found() -> list[EmailMessage]:
        return [m for m in notifications(report) if keep(m)]

    return found


def posts_where(report: World, keep: Callable[[str], bool]) -> Callable[[], Awaitable[list[str]]]:
    async def found() -> list[str]:
        return [p for p in channel_posts(report) if keep(p)]

    return found


@pytest.mark.parametrize(("language", "zone"), [(Language.ZH, "Asia/Shanghai"), (Language.EN, "America/New_York")])
async def test_notices_speak_the_reports_language_and_show_times_in_its_zone(
    own_time_skipping_env: WorkflowEnvironment, sqlite_store: Store, language: Language, zone: str
) -> None:
    """The team is English, in UTC; its report is switched (as PATCH does) after the run began: every
    message since, email and Slack, subject and body, is in the report's language, and the meeting's
    time in a reminder is the report's zone's (UTC beside it). Its own server: it skips to the meeting."""
    env = own_time_skipping_env
    # Resolved an hour ahead: the meeting is 24 h after that at the earliest, so its reminder (a day
    # before it) comes an hour from now at the soonest, after the switch.
    resolved = await env.get_current_time() + timedelta(hours=1)
    chinese = language == Language.ZH
    async with world(env, sqlite_store, resolved_at=resolved) as report:
        await drafted(report)
        pm = await report.store.postmortems.get(report.postmortem_id)
        switched = PostmortemChanges(language=language, timezone=zone)
        if chinese:  # the report's own words in Chinese too: a mention names the section by its title
            switched.title = "结账接口延迟"
            switched.sections = [
                s.model_copy(update={"title": "根本原因"}) if s.key == "root_cause" else s for s in pm.sections
            ]
        await report.store.postmortems.update(pm.id, pm.version, switched, datetime.now(UTC))

        await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))
        excerpt, comment = ("超时设置对吗？", "根因写得太笼统") if chinese else ("Timeouts right?", "Too vague")
        mention = CommentPosted(
            comment_id="c-1", by=ALICE.name, section="root_cause", mentions=[BOB.name], excerpt=excerpt
        )
        await report.handle.signal(PostmortemWorkflow.comment_posted, mention)
        await report.update(PostmortemWorkflow.request_changes, DecisionRequest(actor=ALICE, comment=comment))
        await report.update(PostmortemWorkflow.submit, SubmitRequest(actor=EDITOR, reviewers=[ALICE.name]))

        meeting = await report.handle.query(PostmortemWorkflow.meeting)
        assert meeting is not None and meeting.timezone == "UTC"  # planned in the team's zone
        when = format_local(meeting.start, zone)  # `2026-12-04 17:00 CST (09:00 UTC)`
        assert when.endswith(" UTC)") and when != format_local(meeting.start, "UTC")
        await env.sleep(meeting.start - timedelta(hours=24) - await env.get_current_time() + timedelta(minutes=1))
        [reminder] = await eventually(mails_where(report, lambda m: when in m.get_content()), timeout=30)
        assert str(reminder["To"]) == OWNER and str(reminder["Subject"]).startswith(SUBJECT_WORDS[language][3])
        assert ("会议" if chinese else "meeting") in str(reminder["Subject"])
        await eventually(posts_where(report, lambda p: when in p and "<@U0OWNER>" in p))  # the channel's too

        assert (
            await report.update(PostmortemWorkflow.approve, DecisionRequest(actor=ALICE))
        ).status == Status.PUBLISHED
        published = SUBJECT_WORDS[language][4]
        await eventually(mails_where(report, lambda m: str(m["Subject"]).startswith(published)), timeout=30)
        announced = "复盘已发布：*结账接口延迟*" if chinese else f"Post-mortem published: *{pm.title}*"
        await eventually(posts_where(report, lambda p: p.startswith(announced)), timeout=30)

        mails = notifications(report)
        await check_each(report, mails)
        separator = "：" if chinese else ":"
        assert {str(m["Subject"]).split(separator)[0] for m in mails} >= set(SUBJECT_WORDS[language])
        opened = "打开复盘：https://" if chinese else "Open the post-mortem: https://"
        assert all(opened in m.get_content() for m in mails)
        [mentioned] = [m for m in mails if str(m["To"]) == BOB.name]
        on = "在“根本原因”的评论中提到了你" if chinese else "mentioned you in a comment on Root cause and contributing"
        assert on in mentioned.get_content(), mentioned.get_content()
        texts = [f"{m['Subject']}\n{m.get_content()}" for m in mails] + channel_posts(report)
        if chinese:
            for text in texts:
                assert not english_in(text), (english_in(text), text)
        else:
            assert all(not re.search(r"[\u4e00-\u9fff]", text) for text in texts)
        assert not await report.store.problems.list(report.postmortem_id)
