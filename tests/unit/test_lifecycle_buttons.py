"""Which transition buttons a report page offers: the lifecycle's rules, asked per caller."""

from __future__ import annotations

from postmortem.models import Status
from postmortem.review.lifecycle import Actor, Decision, Review, ReviewerState, allowed_actions


def test_a_draft_offers_submit_to_editors_only() -> None:
    draft = Review()
    assert allowed_actions(draft, Actor(name="ed@example.com", role="editor")) == ["submit"]
    assert allowed_actions(draft, Actor(name="vi@example.com", role="viewer")) == []


def test_in_review_offers_decisions_to_named_reviewers_only() -> None:
    review = Review(status=Status.IN_REVIEW, reviewers=[ReviewerState(reviewer="rev@example.com")])
    assert allowed_actions(review, Actor(name="rev@example.com", role="viewer")) == ["approve", "request_changes"]
    assert allowed_actions(review, Actor(name="other@example.com", role="viewer")) == []
    # An editor may try to publish: the workflow says whom it still waits for.
    assert allowed_actions(review, Actor(name="ed@example.com", role="editor")) == ["publish"]


def test_published_offers_unpublish_and_archive_to_admins_only() -> None:
    review = Review(
        status=Status.PUBLISHED,
        published_count=1,
        reviewers=[ReviewerState(reviewer="rev@example.com", decision=Decision.APPROVED)],
    )
    assert allowed_actions(review, Actor(name="ad@example.com", role="admin")) == ["unpublish", "archive"]
    assert allowed_actions(review, Actor(name="ed@example.com", role="editor")) == []
    assert allowed_actions(review, Actor(name="rev@example.com", role="viewer")) == []


def test_an_unpublished_report_can_be_republished_by_an_admin() -> None:
    review = Review(status=Status.DRAFT, published_count=1)
    assert allowed_actions(review, Actor(name="ad@example.com", role="admin")) == ["submit", "publish"]
    assert allowed_actions(review, Actor(name="ed@example.com", role="editor")) == ["submit"]
