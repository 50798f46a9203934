"""record_problem against a real SMTP server (aiosmtpd) and the loopback Slack: the owners hear of a
problem once, never on the channel that is broken, and not hearing of it never fails the step."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from postmortem.activities.problems import ProblemActivities, ProblemStateInput, RecordProblemInput
from postmortem.config import ServerSettings, SlackSettings, SmtpSettings
from postmortem.models import Language
from postmortem.review import signed_links
from postmortem.review.problems import Problem, ProblemState, problem_key
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event
from tests.fakes.serve import serve_app
from tests.fakes.slack import FakeSlack, slack_app
from tests.fakes.smtp_server import Inbox, smtp_inbox
from tests.support import free_port

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CHANNEL = "C0PAYMENTS"
OWNERS = ["alice@example.com", "bob@example.com"]
JIRA_REFUSED = "Jira refused the call (400): Field 'priority' cannot be set. It is not on the appropriate screen."


@dataclass
class World:
    store: Store
    slack: FakeSlack
    slack_url: str
    inbox: Inbox
    pm_id: str

    def activities(self, *, smtp_port: int | None = None, slack_token: str | None = None) -> ProblemActivities:
        return ProblemActivities(
            self.store,
            smtp=SmtpSettings(
                host=self.inbox.host, port=smtp_port or self.inbox.port, starttls=False, sender="pm@example.com"
            ),
            slack=SlackSettings(api_url=self.slack_url, bot_token=slack_token or self.slack.token),
            server=ServerSettings(public_url="https://pm.example.com"),
        )

    def problem(self, step: str = "tickets", target: str = "jira", **changes: object) -> RecordProblemInput:
        values: dict[str, object] = {
            "postmortem_id": self.pm_id,
            "workflow_id": f"postmortem-{self.pm_id}",
            "problem_id": problem_key(step, target),
            "attempt": 1,
            "step": step,
            "target": target,
            "message": JIRA_REFUSED,
            "now": NOW,
            "owners": OWNERS,
            "slack_channel": CHANNEL,
        }
        return RecordProblemInput.model_validate(values | changes)


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_inbox() as started:
        yield started


@pytest_asyncio.fixture(scope="module")
async def slack_server() -> AsyncIterator[tuple[FakeSlack, str]]:
    state = FakeSlack()
    async with serve_app(slack_app(state)) as base:
        yield state, f"{base}/api"


@pytest_asyncio.fixture
async def world(sqlite_store: Store, slack_server: tuple[FakeSlack, str], inbox: Inbox) -> World:
    slack, url = slack_server
    slack.reset()
    slack.channels[CHANNEL] = []
    inbox.messages.clear()
    inbox.recipients.clear()
    stored, _ = await sqlite_store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event("PPROBLEM").incident, created_at=NOW)
    )
    return World(sqlite_store, slack, url, inbox, stored.id)


async def record(activities: ProblemActivities, problem: RecordProblemInput) -> Problem:
    return await ActivityEnvironment().run(activities.record_problem, problem)


async def test_the_owners_are_told_once_per_problem(world: World) -> None:
    activities = world.activities()
    problem = await record(activities, world.problem())
    assert problem.message == JIRA_REFUSED and problem.attempts == 1 and problem.state == ProblemState.OPEN

    await record(activities, world.problem())  # the activity retried: the same recording
    await record(activities, world.problem(attempt=2, message="Jira refused the call (400): still"))  # failed again

    [posted] = world.slack.posted
    assert posted["channel"] == CHANNEL and JIRA_REFUSED in posted["text"]
    mails = world.inbox.messages
    assert sorted(str(m["To"]) for m in mails) == OWNERS, "one message per owner"
    secret = await world.store.secrets.get_or_create(signed_links.STORED_SECRET, NOW)
    for mail in mails:
        assert "tickets (jira) failed" in mail["Subject"] and mail["Date"]
        body = mail.get_content()
        assert JIRA_REFUSED in body
        assert f"POST https://pm.example.com/api/postmortems/{world.pm_id}/problems/tickets:jira/retry" in body
        # Each owner's own signed link: it opens this report as them, and only them.
        [token] = re.findall(r"\?t=(\S+)", body)
        assert signed_links.verify(secret, token, world.pm_id, NOW) == str(mail["To"])
    # The channel has many readers: the plain page link there (whoever opens it signs in).
    assert f"https://pm.example.com/postmortems/{world.pm_id}\n" in posted["text"] + "\n"
    assert "?t=" not in posted["text"]
    key = f"{world.pm_id}:problem:tickets:jira"
    assert sorted(await world.store.meetings.deliveries(world.pm_id)) == sorted(
        [*((f"{key}:email:{owner}", "email") for owner in OWNERS), (f"{key}:slack", "slack")]
    )
    assert (await world.store.problems.get(world.pm_id, "tickets:jira")).attempts == 2


async def test_the_owners_of_a_chinese_report_are_told_in_chinese(world: World) -> None:
    """One voice: the subject and our words are the report's language; the upstream's message keeps its own."""
    pm = await world.store.postmortems.get(world.pm_id)
    await world.store.postmortems.update(
        pm.id, pm.version, PostmortemChanges(language=Language.ZH, title="结账接口延迟"), NOW
    )
    await record(world.activities(), world.problem())
    [posted] = world.slack.posted
    for text in [posted["text"], *(f"{m['Subject']}\n{m.get_content()}" for m in world.inbox.messages)]:
        assert "复盘“结账接口延迟”：创建工单（jira）失败" in text and "复盘照常进行" in text, text
        assert JIRA_REFUSED in text and "failed" not in text and "goes on without it" not in text
    assert len(world.inbox.messages) == len(OWNERS)


async def test_a_broken_slack_channel_is_told_by_email_only(world: World) -> None:
    slack_refused = "Slack refused the call: channel_not_found"
    await record(
        world.activities(),
        world.problem("notify", CHANNEL, message=slack_refused, broken_channel="slack"),
    )
    assert world.slack.posted == [] and world.slack.requests == []  # not even tried
    assert len(world.inbox.messages) == len(OWNERS)
    assert all(slack_refused in mail.get_content() for mail in world.inbox.messages)


async def test_a_broken_mail_relay_is_told_on_slack_only(world: World) -> None:
    smtp_refused = "SMTP 127.0.0.1:2525 refused the message: 550 5.7.1 Relaying denied"
    await record(
        world.activities(),
        world.problem("invite", "email", message=smtp_refused, broken_channel="email"),
    )
    assert world.inbox.messages == []
    [posted] = world.slack.posted
    assert smtp_refused in posted["text"]


async def test_not_reaching_the_owners_is_logged_and_the_problem_kept(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.slack.channels.clear()  # Slack answers channel_not_found
    nobody_listens = free_port()
    with caplog.at_level(logging.WARNING):
        problem = await record(world.activities(smtp_port=nobody_listens), world.problem())
    assert problem.id == "tickets:jira"
    assert await world.store.problems.list(world.pm_id) == [problem]
    assert "channel_not_found" in caplog.text and all(f"could not email {owner}" in caplog.text for owner in OWNERS)
    assert await world.store.meetings.deliveries(world.pm_id) == []


async def test_a_rerun_of_the_first_recording_tells_whom_it_did_not_reach(world: World) -> None:
    """The first recording stored the problem but its mail did not go (relay down); Temporal runs it again."""
    await record(world.activities(smtp_port=free_port()), world.problem())
    assert len(world.slack.posted) == 1 and world.inbox.messages == []

    await record(world.activities(), world.problem())
    assert len(world.slack.posted) == 1 and len(world.inbox.messages) == len(OWNERS)


async def test_a_problem_of_a_deleted_report_tells_nobody(world: World) -> None:
    await world.store.postmortems.delete(world.pm_id)
    problem = await record(world.activities(), world.problem())
    assert problem.id == "tickets:jira" and problem.message == JIRA_REFUSED
    assert world.slack.requests == [] and world.inbox.messages == []
    assert await world.store.problems.list(world.pm_id) == []


async def test_set_problem_state_moves_a_known_problem_only(world: World) -> None:
    activities = world.activities()
    await record(activities, world.problem())
    retrying = await ActivityEnvironment().run(
        activities.set_problem_state,
        ProblemStateInput(postmortem_id=world.pm_id, problem_id="tickets:jira", state=ProblemState.RETRYING, now=NOW),
    )
    assert retrying.state == ProblemState.RETRYING
    assert (await world.store.problems.get(world.pm_id, "tickets:jira")).state == ProblemState.RETRYING

    with pytest.raises(ApplicationError) as unknown:
        await ActivityEnvironment().run(
            activities.set_problem_state,
            ProblemStateInput(postmortem_id=world.pm_id, problem_id="tickets:linear", state=ProblemState.OPEN, now=NOW),
        )
    assert unknown.value.type == "NotFound" and unknown.value.non_retryable
