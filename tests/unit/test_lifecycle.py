"""The lifecycle's rules, pure: every refusal with its status, and what a move implies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postmortem.models import Status
from postmortem.review.lifecycle import (
    TRANSITIONS,
    Actor,
    Decision,
    ReportFacts,
    Review,
    ReviewerState,
    TransitionRefused,
    apply,
    check,
    lapse,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EDITOR = Actor(name="editor@example.com", role="editor")
VIEWER = Actor(name="viewer@example.com", role="viewer")
ADMIN = Actor(name="admin@example.com", role="admin")
ALICE = Actor(name="alice@example.com", role="viewer")
BOB = Actor(name="bob@example.com", role="viewer")


def in_review(*approved: tuple[str, int | None]) -> Review:
    """IN_REVIEW with Alice and Bob; `approved` = (who, version) already approved."""
    review = Review(
        status=Status.IN_REVIEW, reviewers=[ReviewerState(reviewer=ALICE.name), ReviewerState(reviewer=BOB.name)]
    )
    for name, version in approved:
        state = review.reviewer(name)
        assert state is not None
        state.decision, state.version, state.decided_at = Decision.APPROVED, version, NOW
    return review


def refusal(review: Review, action: str, actor: Actor, **given: object) -> TransitionRefused:
    with pytest.raises(TransitionRefused) as refused:
        check(review, action, actor, **given)  # type: ignore[arg-type]
    return refused.value


def test_every_action_is_in_the_table_and_unknown_ones_are_bad_input() -> None:
    assert set(TRANSITIONS) == {
        "submit",
        "approve",
        "request_changes",
        "change_reviewers",
        "publish",
        "unpublish",
        "archive",
    }
    assert refusal(Review(), "delete", ADMIN).status == 422


@pytest.mark.parametrize(
    ("review", "action", "actor", "given", "status", "words"),
    [
        (Review(), "submit", VIEWER, {"reviewers": [ALICE.name]}, 403, "editor role"),
        (Review(), "submit", EDITOR, {"reviewers": []}, 422, "at least one reviewer"),
        (
            Review(),
            "submit",
            EDITOR,
            {"reviewers": [ALICE.name], "facts": ReportFacts(version=3, empty_required=["Summary", "Root cause"])},
            422,
            "Summary, Root cause",
        ),
        (in_review(), "submit", EDITOR, {"reviewers": [ALICE.name]}, 409, "only a DRAFT"),
        (Review(), "approve", ALICE, {}, 409, "IN_REVIEW"),
        (in_review(), "approve", VIEWER, {}, 403, "not a reviewer"),
        (in_review((ALICE.name, 2)), "approve", ALICE, {"facts": ReportFacts(version=2)}, 409, "already approved"),
        (in_review(), "request_changes", ALICE, {"comment": "  "}, 422, "comment is required"),
        (in_review(), "change_reviewers", VIEWER, {"reviewers": [BOB.name]}, 403, "editor role"),
        (in_review(), "change_reviewers", EDITOR, {"reviewers": []}, 422, "at least one reviewer"),
        (Review(), "change_reviewers", EDITOR, {"reviewers": [BOB.name]}, 409, "IN_REVIEW"),
        (in_review((ALICE.name, 1)), "publish", EDITOR, {}, 409, f"waiting for approval from {BOB.name}"),
        (Review(), "publish", ADMIN, {}, 409, "submit it first"),
        (Review(published_count=1), "publish", EDITOR, {}, 403, "admin role"),
        (Review(status=Status.ARCHIVED), "publish", ADMIN, {}, 409, "ARCHIVED report cannot be published"),
        (Review(), "unpublish", ADMIN, {}, 409, "only a PUBLISHED"),
        (Review(status=Status.PUBLISHED), "unpublish", EDITOR, {}, 403, "unpublishing needs the admin role"),
        (Review(status=Status.PUBLISHED), "archive", EDITOR, {}, 403, "archiving needs the admin role"),
        (Review(status=Status.IN_REVIEW), "archive", ADMIN, {}, 409, "only a PUBLISHED"),
    ],
)
def test_refusals_carry_their_status(
    review: Review, action: str, actor: Actor, given: dict[str, object], status: int, words: str
) -> None:
    refused = refusal(review, action, actor, **given)
    assert refused.status == status and words in str(refused)


def test_open_threads_stop_publishing_and_the_approval_that_would_publish() -> None:
    threads = ReportFacts(version=4, open_threads=2)
    assert refusal(in_review((ALICE.name, 4), (BOB.name, 4)), "publish", EDITOR, facts=threads).status == 409
    last = refusal(in_review((ALICE.name, 4)), "approve", BOB, facts=threads)
    assert last.status == 409 and "open comment threads" in str(last)
    check(in_review(), "approve", BOB, facts=threads)  # not the last approval: it publishes nothing yet


def test_an_approval_of_an_older_version_than_one_known_is_refused() -> None:
    seen = refusal(in_review((ALICE.name, 5)), "approve", BOB, facts=ReportFacts(version=4))
    assert seen.status == 409 and "read it again" in str(seen)
    heard = refusal(in_review(), "approve", BOB, facts=ReportFacts(version=4), current_version=6)
    assert heard.status == 409 and "version 6" in str(heard)
    check(in_review(), "approve", BOB, facts=ReportFacts(version=6), current_version=6)


def test_an_approval_of_a_newer_version_lapses_the_older_ones_and_publishes_the_approved_version() -> None:
    review = in_review((ALICE.name, 1))
    outcome = apply(review, "approve", BOB, now=NOW, facts=ReportFacts(version=2))
    assert outcome.lapsed == [ALICE.name] and outcome.to == Status.IN_REVIEW and not outcome.publishes
    assert review.reviewer(ALICE.name).decision == Decision.PENDING  # type: ignore[union-attr]
    assert review.reviewer(BOB.name).version == 2  # type: ignore[union-attr]
    again = apply(review, "approve", ALICE, now=NOW, facts=ReportFacts(version=2), slug=lambda: "slug-1")
    assert again.publishes and again.to == Status.PUBLISHED
    assert review.published_version == 2 and review.published_count == 1 and review.public_slug == "slug-1"
    assert [t.to_status for t in review.history] == [Status.IN_REVIEW, Status.PUBLISHED]


def test_an_edit_lapses_approvals_of_older_versions_only() -> None:
    review = in_review((ALICE.name, 3), (BOB.name, None))
    assert lapse(review, 4) == [ALICE.name]  # Bob's approval names no version: not known to be older
    assert lapse(review, 4) == []
    assert lapse(Review(status=Status.PUBLISHED), 9) == []


def test_changing_reviewers_keeps_the_decisions_of_those_who_stay() -> None:
    review = in_review((ALICE.name, 2))
    outcome = apply(review, "change_reviewers", EDITOR, now=NOW, reviewers=["ALICE@example.com", "carol@example.com"])
    assert outcome.added == ["carol@example.com"] and outcome.to == Status.IN_REVIEW
    assert [(r.reviewer, r.decision) for r in review.reviewers] == [
        (ALICE.name, Decision.APPROVED),
        ("carol@example.com", Decision.PENDING),
    ]
    assert review.history[-1].action == "change_reviewers"


def test_a_republished_correction_publishes_the_version_read_and_keeps_its_link() -> None:
    review = Review(status=Status.PUBLISHED, published_count=1, published_version=2, public_slug="kept")
    apply(review, "unpublish", ADMIN, now=NOW)
    outcome = apply(review, "publish", ADMIN, now=NOW, facts=ReportFacts(version=5), slug=lambda: "new")
    assert outcome.publishes and review.published_count == 2
    assert review.published_version == 5 and review.public_slug == "kept"


def test_archive_keeps_the_publication() -> None:
    review = Review(status=Status.PUBLISHED, published_count=1, published_version=2)
    outcome = apply(review, "archive", ADMIN, now=NOW)
    assert outcome.to == Status.ARCHIVED and not outcome.publishes and review.published_count == 1
