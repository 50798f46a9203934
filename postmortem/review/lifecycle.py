"""The review lifecycle as pure rules: DRAFT → IN_REVIEW → PUBLISHED → ARCHIVED, driven by people.

The workflow owns this state and applies it through Temporal Updates whose validators call
`check`: an invalid transition or an unauthorised caller is refused before anything is written.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from postmortem.models import Status


class Decision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"


class Actor(BaseModel):
    """Who asks: the API token's name (a person's email for reviewers) and its role."""

    name: str
    role: str


class ReviewerState(BaseModel):
    reviewer: str
    decision: Decision = Decision.PENDING
    comment: str | None = None
    decided_at: AwareDatetime | None = None


class Transition(BaseModel):
    action: str
    by: str
    at: AwareDatetime
    from_status: Status
    to_status: Status
    comment: str | None = None


class Review(BaseModel):
    status: Status = Status.DRAFT
    reviewers: list[ReviewerState] = Field(default_factory=list)
    history: list[Transition] = Field(default_factory=list)
    published_count: int = 0
    public_slug: str | None = Field(default=None, description="the token-free link of the public summary")

    def reviewer(self, name: str) -> ReviewerState | None:
        return next((r for r in self.reviewers if r.reviewer.casefold() == name.casefold()), None)

    @property
    def all_approved(self) -> bool:
        return bool(self.reviewers) and all(r.decision == Decision.APPROVED for r in self.reviewers)


class TransitionRefused(ValueError):
    """Carries the HTTP status the API answers with: 409 for a wrong state, 403 for a wrong caller."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


ADMIN = "admin"
EDITORS = {"editor", "reviewer", "admin"}


def check(review: Review, action: str, actor: Actor, *, reviewers: list[str] | None = None) -> None:
    """Raise TransitionRefused with a reason when `actor` may not do `action` now."""
    status = review.status
    if action == "submit":
        if status != Status.DRAFT:
            raise TransitionRefused(f"only a DRAFT can be submitted for review; this one is {status.value}")
        if actor.role not in EDITORS:
            raise TransitionRefused("submitting needs the editor role", 403)
        if not reviewers:
            raise TransitionRefused("name at least one reviewer", 422)
    elif action in ("approve", "request_changes"):
        if status != Status.IN_REVIEW:
            raise TransitionRefused(f"only a report IN_REVIEW can be reviewed; this one is {status.value}")
        state = review.reviewer(actor.name)
        if state is None:
            raise TransitionRefused(f"{actor.name} is not a reviewer of this post-mortem", 403)
        if action == "approve" and state.decision == Decision.APPROVED:
            raise TransitionRefused(f"{actor.name} already approved this revision")
    elif action == "publish":
        if actor.role != ADMIN and status != Status.IN_REVIEW:
            raise TransitionRefused("republishing a corrected report needs the admin role", 403)
        if status == Status.IN_REVIEW and not review.all_approved:
            waiting = [r.reviewer for r in review.reviewers if r.decision != Decision.APPROVED]
            raise TransitionRefused(f"waiting for approval from {', '.join(waiting)}")
        if status == Status.DRAFT and review.published_count == 0:
            raise TransitionRefused("a draft is published through review: submit it first")
        if status not in (Status.IN_REVIEW, Status.DRAFT):
            raise TransitionRefused(f"a {status.value} report cannot be published")
    elif action == "unpublish":
        if status != Status.PUBLISHED:
            raise TransitionRefused(f"only a PUBLISHED report can be unpublished; this one is {status.value}")
        if actor.role != ADMIN:
            raise TransitionRefused("unpublishing needs the admin role", 403)
    elif action == "archive":
        if status != Status.PUBLISHED:
            raise TransitionRefused(f"only a PUBLISHED report can be archived; this one is {status.value}")
        if actor.role != ADMIN:
            raise TransitionRefused("archiving needs the admin role", 403)
    else:
        raise TransitionRefused(f"unknown action {action!r}", 422)


def can_edit(status: Status, role: str, *, is_reviewer: bool = False) -> bool:
    """DRAFT: editors; IN_REVIEW: also its reviewers; PUBLISHED and ARCHIVED: admins only."""
    if role == ADMIN:
        return True
    if status in (Status.DRAFT, Status.SKIPPED):
        return role in EDITORS
    if status == Status.IN_REVIEW:
        return role in EDITORS or is_reviewer
    return False
