"""Which reminder is due next, and what it says: pure functions of the workflow's state and the time.

The review loop sleeps on a durable timer until the earliest one: submit the draft, review it (every
`remind_reviewers_hours` while a reviewer is undecided), the publication deadline, and the review
meeting a day before it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.review import NotifyInput, PeopleNoticeInput
    from postmortem.meeting.models import MeetingStatus
    from postmortem.models import Status
    from postmortem.review.lifecycle import Decision
    from postmortem.review.notices import NoticeKind, Say, Voice
    from postmortem.workflows.state import PostmortemState


@dataclass(frozen=True)
class Reminder:
    due: datetime
    kind: str  # "submit", "review:<reviewer>", "deadline", "meeting:<sequence>"
    recipients: list[str]
    say: Say  # written in the report's language and zone by the activity that sends it


def english(state: PostmortemState) -> Voice:
    """How the workflow writes a message's English `lines` (what histories from before the word table
    sent, and what an input without `says` still sends): in the team's zone."""
    return Voice(zone=state.team.timezone if state.team else "UTC")


def next_reminder(state: PostmortemState, now: datetime, *, meeting_reminders: Callable[[], bool]) -> Reminder | None:
    """The earliest reminder not sent yet. `meeting_reminders()` is asked only when a meeting is coming
    (runs from before those reminders patch it there)."""
    candidates = _candidates(state, now, meeting_reminders)
    return min(candidates, key=lambda c: c.due) if candidates else None


def due_reminders(state: PostmortemState, now: datetime, *, meeting_reminders: Callable[[], bool]) -> list[Reminder]:
    """Every reminder due by `now`, earliest first (a backfilled report has several at once)."""
    return sorted((c for c in _candidates(state, now, meeting_reminders) if c.due <= now), key=lambda c: c.due)


def _candidates(state: PostmortemState, now: datetime, meeting_reminders: Callable[[], bool]) -> list[Reminder]:
    review, team, resolved_at = state.review, state.team, state.resolved_at
    if review is None or team is None or resolved_at is None:
        return []
    owner = state.owners
    candidates: list[Reminder] = []
    if review.status == Status.DRAFT and state.submitted_at is None and "submit" not in state.reminded:
        candidates.append(
            Reminder(
                resolved_at + timedelta(hours=team.remind_submit_hours),
                "submit",
                owner,
                Say(words="remind_submit"),
            )
        )
    if review.status == Status.IN_REVIEW and state.submitted_at is not None:
        for reviewer in review.reviewers:
            if reviewer.decision == Decision.PENDING:
                last = state.reminded.get(f"review:{reviewer.reviewer}", state.submitted_at)
                candidates.append(
                    Reminder(
                        last + timedelta(hours=team.remind_reviewers_hours),
                        f"review:{reviewer.reviewer}",
                        [reviewer.reviewer],
                        Say(words="remind_review"),
                    )
                )
    if review.status in (Status.DRAFT, Status.IN_REVIEW) and "deadline" not in state.reminded:
        candidates.append(
            Reminder(
                resolved_at + timedelta(days=team.publish_deadline_days),
                "deadline",
                owner,
                Say(words="remind_deadline", args={"days": str(team.publish_deadline_days)}),
            )
        )
    meeting = state.meeting
    if meeting is not None and meeting.status != MeetingStatus.CANCELLED and meeting_reminders():
        key = f"meeting:{meeting.sequence}"
        if key not in state.reminded and meeting.start > now:
            candidates.append(
                Reminder(
                    max(meeting.start - timedelta(hours=24), now),
                    key,
                    owner,
                    Say(words="remind_meeting", at=meeting.start),
                )
            )
    return candidates


def reminder_notice(state: PostmortemState, reminder: Reminder, now: datetime) -> NotifyInput:
    """The message of a reminder that is due, and mark it sent (its key is stable per occurrence)."""
    return notice(
        state,
        key=f"{state.postmortem_id}:remind:{_sent(state, reminder, now)}",
        recipients=reminder.recipients,
        subject=f"Reminder: post-mortem {state.postmortem_id}",
        text=english(state).say(reminder.say),
        now=now,
    )


def _sent(state: PostmortemState, reminder: Reminder, now: datetime) -> str:
    """Mark `reminder` sent; its `<kind>:<occurrence>`, stable per occurrence (the delivery key's end)."""
    kind = reminder.kind
    occurrence = (
        len([k for k in state.reminded if k == kind])
        if not kind.startswith("review:")
        else int((now - (state.submitted_at or now)).total_seconds() // 3600)
    )
    state.reminded[kind] = now
    return f"{kind}:{occurrence}"


TOPICS = {"submit": "topic_submit", "review": "topic_review", "deadline": "topic_deadline", "meeting": "topic_meeting"}


def folded_notices(state: PostmortemState, due: list[Reminder], now: datetime) -> list[tuple[str, PeopleNoticeInput]]:
    """The reminders due at once as ONE message per recipient (notify-v2), and mark them all sent;
    each with the kind of its earliest reminder, which names the step (should it fail: "reminder submit").

    People who are due the very same reminders share a notice (one channel post, one email each)."""
    keys = [_sent(state, reminder, now) for reminder in due]
    per_person: dict[str, list[int]] = {}
    for index, reminder in enumerate(due):
        for person in reminder.recipients:
            per_person.setdefault(person, []).append(index)
    groups: dict[tuple[int, ...], list[str]] = {}
    for person, theirs in per_person.items():
        groups.setdefault(tuple(theirs), []).append(person)
    notices = []
    for indices, people in groups.items():
        topics = dict.fromkeys(TOPICS[due[i].kind.split(":")[0]] for i in indices)
        notices.append(
            (
                due[indices[0]].kind,
                people_notice(
                    state,
                    NoticeKind.REMINDER,
                    key=f"{state.postmortem_id}:remind:{'+'.join(keys[i] for i in indices)}",
                    recipients=people,
                    says=[due[i].say for i in indices],
                    topics=list(topics),
                    now=now,
                ),
            )
        )
    return notices


def people_notice(
    state: PostmortemState,
    kind: NoticeKind,
    *,
    key: str,
    recipients: list[str],
    says: list[Say],
    now: datetime,
    topics: list[str] | None = None,
) -> PeopleNoticeInput:
    """A message of `kind` to each of `recipients` (by email) and the team's channel, mentioning those
    Slack knows; the activity writes `says` and `topics` in the report's language and zone, and adds
    the title and each person's signed link. `lines` and `topic` are the same in English."""
    assert state.team is not None
    team, voice = state.team, english(state)
    return PeopleNoticeInput(
        postmortem_id=state.postmortem_id,
        key=key,
        kind=kind,
        topic=", ".join(voice.topics(topics)) if topics else None,
        recipients=recipients,
        lines=[voice.say(line) for line in says],
        mentions=[f"<@{team.slack_users[r.casefold()]}>" for r in recipients if r.casefold() in team.slack_users],
        slack_channel=team.slack_channel,
        now=now,
        says=says,
        topics=topics or [],
    )


def notice(
    state: PostmortemState, *, key: str, recipients: list[str], subject: str, text: str, now: datetime
) -> NotifyInput:
    """A message to `recipients` (by email) and the team's channel, mentioning those Slack knows."""
    assert state.team is not None
    team = state.team
    mentions = [f"<@{team.slack_users[r.casefold()]}>" for r in recipients if r.casefold() in team.slack_users]
    return NotifyInput(
        postmortem_id=state.postmortem_id,
        key=key,
        recipients=recipients,
        subject=subject,
        text=" ".join([*mentions, text]),
        slack_channel=team.slack_channel,
        now=now,
    )
