"""Reminders due at once (a backfilled report) fold into one message per person: pure functions of
the workflow's state, so their keys are the same on every replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postmortem.incident.teams import TeamsConfig
from postmortem.models import Status
from postmortem.review.lifecycle import Decision, Review, ReviewerState
from postmortem.review.notices import NoticeKind
from postmortem.workflows import reminders
from postmortem.workflows.state import PostmortemState

NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
OWNERS = ["ana@example.com", "bo@example.com"]


def state(status: Status, *, resolved_days_ago: int, reviewers: tuple[str, ...] = ()) -> PostmortemState:
    team = (
        TeamsConfig()
        .settings_for(None, None, OWNERS)
        .model_copy(update={"slack_channel": "C0X", "slack_users": {"ana@example.com": "U0ANA"}})
    )
    review = Review(status=status, reviewers=[ReviewerState(reviewer=r, decision=Decision.PENDING) for r in reviewers])
    submitted = NOW - timedelta(days=2) if status == Status.IN_REVIEW else None
    return PostmortemState(
        postmortem_id="pagerduty-P1",
        review=review,
        team=team,
        resolved_at=NOW - timedelta(days=resolved_days_ago),
        submitted_at=submitted,
    )


def due(s: PostmortemState) -> list[reminders.Reminder]:
    return reminders.due_reminders(s, NOW, meeting_reminders=lambda: True)


def test_late_reminders_of_the_same_people_are_one_message_to_each() -> None:
    s = state(Status.DRAFT, resolved_days_ago=20)
    late = due(s)
    assert [r.kind for r in late] == ["submit", "deadline"]
    [(kind, notice)] = reminders.folded_notices(s, late, NOW)
    assert kind == "submit" and notice.kind == NoticeKind.REMINDER
    assert notice.recipients == OWNERS and len(notice.lines) == 2
    assert notice.key == "pagerduty-P1:remind:submit:0+deadline:0"
    assert notice.topic == "submit the draft, publication deadline" and notice.mentions == ["<@U0ANA>"]
    assert set(s.reminded) == {"submit", "deadline"} and due(s) == []  # each marked sent: never again


def test_people_due_different_reminders_get_their_own_message() -> None:
    s = state(Status.IN_REVIEW, resolved_days_ago=20, reviewers=("cy@example.com",))
    late = due(s)
    assert sorted(r.kind for r in late) == ["deadline", "review:cy@example.com"]
    folded = {notice.recipients[0]: notice for _, notice in reminders.folded_notices(s, late, NOW)}
    assert folded["cy@example.com"].recipients == ["cy@example.com"]
    assert folded["cy@example.com"].lines == ["A post-mortem is waiting for your review."]
    assert folded["ana@example.com"].recipients == OWNERS


def test_nothing_due_yet_is_nothing_folded() -> None:
    s = state(Status.DRAFT, resolved_days_ago=0)
    assert due(s) == [] and reminders.folded_notices(s, [], NOW) == []
