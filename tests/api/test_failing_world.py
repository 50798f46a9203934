"""The failing world: every side effect that can fail for good, each through its own loopback stand-in
broken by its switch, over the real API, worker and Temporal (issue 12, "How it is proven").

For each: a report driven through the REST API (the PagerDuty webhook, then edits and decisions) meets
the outage; its workflow is still Running, GET /api/postmortems/{id} lists the problem (step, target,
the upstream's own words, open), and submit/approve still publish it. Once the stand-in is healed,
POST …/problems/{id}/retry answers 202, the stand-in receives exactly one delivery for it, the problem
is resolved, and a second retry answers 409.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.stand_ins import CHANNEL, OWNER, StandIns, World, stand_ins, world
from tests.api.test_review_api import fill, person
from tests.api.test_webhooks import draft_of, signed
from tests.factories import pagerduty_resolved_body
from tests.fakes.github import VALIDATION_FAILED_RECORDED
from tests.fakes.jira import REFUSED_FIELDS
from tests.support import eventually

REVIEWER = "alice@example.com"
ITEMS = ("Lower the DNS TTL", "Alert on replication lag")


@dataclass(frozen=True)
class Case:
    """One side effect failing for good: how its stand-in is broken, what the report then shows, and how
    many deliveries the healed stand-in must get from one retry."""

    id: str
    step: str
    target: str
    words: tuple[str, ...]  # the upstream's own words, each in the problem's message
    fail: Callable[[World], None]
    heal: Callable[[World], None]
    delivered: Callable[[World], int]
    expected: int = 1  # one delivery (one ticket per item: len(ITEMS))
    early: bool = True  # broken before the incident resolves (False: after submit, before the approval)
    tracker: str = "github"
    smtp_login: bool = False
    resolved_ago: timedelta = timedelta(0)
    broken: Literal["email", "slack"] | None = None  # the way of telling the owner that is down too


def invites(w: World) -> int:
    return w.inbox.invite_revisions()


def calendar_puts(w: World) -> int:
    return sum(1 for f in w.outside.caldav.log if f.method == "PUT" and 200 <= f.status < 300)


def announcements(w: World) -> int:
    return sum(1 for m in w.slack.posted if m.get("channel") == CHANNEL and "Post-mortem published" in m["text"])


def submit_reminders(w: World) -> int:
    return sum(1 for m in w.slack.posted if "has not been submitted" in m["text"])


def gathers(w: World) -> int:
    """PagerDuty gathers that read the log entries (every refused request was the first of a gather)."""
    pd = w.outside.pagerduty
    return sum(1 for r in pd.requests if r.path.endswith("/log_entries")) - pd.refused


def told(w: World, problem_id: str) -> dict[str, int]:
    """How often the owner heard of the problem, per channel (the message names its retry URL)."""
    mails = [m for m in w.inbox.messages if m.get_content_type() == "text/plain" and problem_id in m.get_content()]
    return {
        "slack": sum(1 for m in w.slack.posted if problem_id in m["text"]),
        "email": sum(1 for m in mails if OWNER in str(m["To"])),
    }


def slack_down(error: str) -> Callable[[World], None]:
    return lambda w: w.slack.fail_with(error, path="/api/chat.postMessage")


def slack_up(w: World) -> None:
    w.slack.heal()


def announcement(error: str) -> Case:
    return Case(
        f"slack-{error}-announcement",
        "publish",
        CHANNEL,
        (error,),
        slack_down(error),
        slack_up,
        announcements,
        early=False,
        broken="slack",
    )


def reminder(error: str) -> Case:
    """Resolved three days ago: the "submit the draft" reminder is due at once, and Slack refuses it."""
    return Case(
        f"slack-{error}-reminder",
        "notify",
        "reminder submit",
        (error,),
        slack_down(error),
        slack_up,
        submit_reminders,
        resolved_ago=timedelta(days=3),
        broken="slack",
    )


def tickets(name: str, words: tuple[str, ...], fail: Callable[[World], None]) -> Case:
    tracker = name.split("-")[0]
    return Case(
        name,
        "tickets",
        tracker,
        words,
        fail,
        lambda w: getattr(w.outside, tracker).heal(),
        lambda w: getattr(w.outside, tracker).created,  # issues made, crashed answers included
        expected=len(ITEMS),
        early=False,
        tracker=tracker,
    )


CASES = [
    Case(
        "smtp-550-invite",
        "invite",
        "email revision 0",
        ("550", "5.1.1", "Recipient address rejected"),
        lambda w: w.inbox.fail_with(550),
        lambda w: w.inbox.heal(),
        invites,
        broken="email",
    ),
    Case(
        "smtp-535-invite",
        "invite",
        "email revision 0",
        ("535", "5.7.8 Authentication credentials invalid"),
        lambda w: w.inbox.fail_with(535),
        lambda w: w.inbox.heal(),
        invites,
        smtp_login=True,
        broken="email",
    ),
    Case(
        "caldav-403-invite",
        "invite",
        "caldav revision 0",
        ("403", "Access to the requested resource forbidden"),
        lambda w: w.outside.radicale.fail_with(403),
        lambda w: w.outside.radicale.heal(),
        calendar_puts,
    ),
    announcement("channel_not_found"),
    announcement("not_in_channel"),
    reminder("channel_not_found"),
    reminder("not_in_channel"),
    tickets("github-410", ("410", "Issues are disabled for this repo"), lambda w: w.outside.github.fail_with(410)),
    tickets(
        "github-422",
        ("422", "Validation Failed", "assignees"),
        lambda w: w.outside.github.fail_with(422, path="/repos/acme/ops/issues"),
    ),
    tickets(
        "github-422-recorded",
        ("422", "Validation Failed", "Label", "color"),
        lambda w: w.outside.github.fail_with((422, VALIDATION_FAILED_RECORDED), path="/repos/acme/ops/issues"),
    ),
    tickets(
        "jira-400",
        ("400", "Field 'priority' is required", "project: valid project is required"),
        lambda w: w.outside.jira.fail_with((400, REFUSED_FIELDS), path="/rest/api/3/issue"),
    ),
    tickets("linear-graphql-400", ("400", "Invalid input."), lambda w: w.outside.linear.fail_with("INVALID_INPUT")),
    tickets(
        "linear-graphql-200",
        ("You don't have access to this team.",),
        lambda w: w.outside.linear.fail_with("FORBIDDEN", status=200),
    ),
    Case(
        "pagerduty-401-gather",
        "gather",
        "pagerduty",
        ("401", "Authentication failed", "2006"),
        lambda w: w.outside.pagerduty.fail_with(401),
        lambda w: w.outside.pagerduty.heal(),
        gathers,
    ),
]


@pytest_asyncio.fixture(scope="module")
async def outside() -> AsyncIterator[StandIns]:
    async with stand_ins() as started:
        yield started


async def resolved(w: World, incident: str, at: datetime) -> str:
    """The PagerDuty webhook of a resolve, as PagerDuty signs it: the draft exists."""
    w.outside.pagerduty.add_incident(incident, log_entries=3, alerts=1, notes=1)
    body = pagerduty_resolved_body(incident, resolved_at=at)
    answer = await w.api.http.post("/webhooks/pagerduty", content=body, headers=signed(body))
    assert answer.status_code == 202, answer.text
    pm_id = f"pagerduty-{incident}"
    w.reports.append(pm_id)
    return (await draft_of(w.api, pm_id)).id


async def the_problem(w: World, pm_id: str, case: Case, state: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        report = (await w.api.http.get(f"/api/postmortems/{pm_id}", headers=w.api.auth(Role.VIEWER))).json()
        return next(
            (p for p in report["problems"] if (p["step"], p["target"], p["state"]) == (case.step, case.target, state)),
            None,
        )

    return await eventually(found, timeout=30)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_side_effect_failing_for_good_is_a_problem_the_report_goes_on_and_one_retry_delivers_it(
    case: Case, dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, outside: StandIns
) -> None:
    async with world(dev_env, sqlite_store, tmp_path, outside, tracker=case.tracker, smtp_login=case.smtp_login) as w:
        api = w.api
        if case.early:
            case.fail(w)
        pm_id = await resolved(w, f"PWORLD{datetime.now(UTC):%H%M%S%f}", datetime.now(UTC) - case.resolved_ago)
        base = f"/api/postmortems/{pm_id}"
        editor = api.auth(Role.EDITOR)
        if case.early:  # the outage is met before anyone acts (a reminder is not due once submitted)
            await the_problem(w, pm_id, case, "open")
        alice = await person(api, REVIEWER, Role.REVIEWER)
        for description in ITEMS if case.step == "tickets" else ():
            added = await api.http.post(
                f"{base}/action-items", json={"description": description, "owner": REVIEWER}, headers=editor
            )
            assert added.status_code == 201, added.text
        await fill(api, pm_id)
        submitted = await api.http.post(f"{base}/submit", json={"reviewers": [REVIEWER]}, headers=editor)
        assert submitted.status_code == 200 and submitted.json()["status"] == "IN_REVIEW", submitted.text
        if not case.early:
            case.fail(w)
        approved = await api.http.post(f"{base}/approve", json={}, headers=alice)
        assert approved.status_code == 200 and approved.json()["status"] == "PUBLISHED", approved.text

        # (2) the problem is on the report, in the upstream's words
        problem = await the_problem(w, pm_id, case, "open")
        for words in case.words:
            assert words in problem["message"], (words, problem["message"])
        assert problem["attempts"] == 1 and set(problem) >= {"id", "first_seen"}
        # (1) the workflow goes on; (3) the lifecycle went through: published, exported
        handle = api.env.client.get_workflow_handle(f"postmortem-{pm_id}")
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        report = (await api.http.get(base, headers=api.auth(Role.VIEWER))).json()
        assert report["status"] == "PUBLISHED"

        async def exported() -> bool:
            return (await api.http.get(f"{base}/export", params={"format": "html"}, headers=editor)).is_success

        await eventually(exported, timeout=30)
        assert case.delivered(w) == 0
        # told once, on every way of telling that works
        once = {channel: int(channel != case.broken) for channel in ("slack", "email")}
        await eventually(lambda: _async(told(w, problem["id"]) == once), timeout=10)

        # (4) healed: one retry, one delivery, resolved; a second retry is refused
        case.heal(w)
        retry = f"{base}/problems/{problem['id']}/retry"
        accepted = await api.http.post(retry, headers=editor)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["id"] == problem["id"] and accepted.json()["state"] == "retrying"
        await the_problem(w, pm_id, case, "resolved")
        assert case.delivered(w) == case.expected
        again = await api.http.post(retry, headers=editor)
        assert again.status_code == 409, again.text
        assert case.delivered(w) == case.expected
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        assert told(w, problem["id"]) == once  # the retry told nobody again
        if case.step == "tickets":  # one ticket per item, each on the report
            items = (await api.http.get(f"{base}/action-items", headers=editor)).json()
            keys = [item["ticket_key"] for item in (items if isinstance(items, list) else items["items"])]
            assert len(keys) == len(ITEMS) and None not in keys and len(set(keys)) == len(keys)


async def _async(value: bool) -> bool:
    return value


@pytest.mark.parametrize(
    "code, refusals",
    [
        (550, 2),  # one per recipient
        # one per AUTH mechanism the relay offers (aiosmtpd: PLAIN and LOGIN): aiosmtplib's login tries each
        # in turn within the one send, as servers may advertise a mechanism they refuse
        (535, 2),
    ],
    ids=["smtp-550", "smtp-535"],
)
async def test_a_refusing_relay_is_named_in_its_words_and_not_used_to_tell_the_owner(
    code: int, refusals: int, dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, outside: StandIns
) -> None:
    async with world(dev_env, sqlite_store, tmp_path, outside, smtp_login=code == 535) as w:
        w.inbox.fail_with(code)
        pm_id = await resolved(w, f"PRELAY{datetime.now(UTC):%H%M%S%f}", datetime.now(UTC))
        case = next(c for c in CASES if c.id == f"smtp-{code}-invite")
        problem = await the_problem(w, pm_id, case, "open")
        await eventually(lambda: _async(told(w, problem["id"])["slack"] == 1), timeout=10)
        assert problem["message"].startswith(f"SMTP {w.inbox.host}:{w.inbox.port} "), problem["message"]
        # the invite's refusals only (one per recipient, or the one login): the owner was not mailed through it
        assert len(w.inbox.refused) == refusals, w.inbox.refused


async def test_a_reminder_still_reaches_the_owner_by_email_while_slack_refuses_it(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, outside: StandIns
) -> None:
    case = next(c for c in CASES if c.id == "slack-channel_not_found-reminder")
    async with world(dev_env, sqlite_store, tmp_path, outside) as w:
        case.fail(w)
        pm_id = await resolved(w, f"PREMIND{datetime.now(UTC):%H%M%S%f}", datetime.now(UTC) - case.resolved_ago)
        await the_problem(w, pm_id, case, "open")

        async def reminded() -> bool:
            return any(str(m["Subject"]).startswith("Reminder:") for m in w.inbox.messages)

        await eventually(reminded, timeout=5)
