"""The review lifecycle as pure rules: DRAFT → IN_REVIEW → PUBLISHED → ARCHIVED, driven by people.

The workflow owns this state and applies it through Temporal Updates whose validators call
`check`: an invalid transition or an unauthorised caller is refused before anything is written.
Every rule lives here, once: the roles, the reviewers, the document's required sections and open
threads (`ReportFacts`, read from the store by the API), and the version an approval is of. `apply`
then makes the move on the review and says what it implies (a publication to carry out, approvals
that lapsed), so the workflow only records and schedules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
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
    version: int | None = Field(default=None, description="the document version this decision was about")


class ReportFacts(BaseModel):
    """What the lifecycle rules need to know of the document, read from the store by the API."""

    version: int
    empty_required: list[str] = Field(default_factory=list, description="titles of required sections left empty")
    open_threads: int = 0


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
    published_version: int | None = Field(default=None, description="the approved document version published")
    public_slug: str | None = Field(default=None, description="the token-free link of the public summary")

    def reviewer(self, name: str) -> ReviewerState | None:
        return next((r for r in self.reviewers if r.reviewer.casefold() == name.casefold()), None)

    @property
    def all_approved(self) -> bool:
        return bool(self.reviewers) and all(r.decision == Decision.APPROVED for r in self.reviewers)

    @property
    def approved_version(self) -> int | None:
        """The newest document version someone approved (None when no approval names one)."""
        return max((r.version for r in self.reviewers if r.decision == Decision.APPROVED and r.version), default=None)


class TransitionRefused(ValueError):
    """Carries the HTTP status the API answers with: 409 for a wrong state, 403 for a wrong caller,
    422 for a request whose content is wrong, 404 for something that is not there."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


ADMIN = "admin"
EDITORS = {"editor", "reviewer", "admin"}
ADMIN_ONLY = {"unpublish": "unpublishing", "archive": "archiving"}


@dataclass(frozen=True)
class Move:
    """One row of the table: where an action may start, and where it goes (None: decided by `apply`)."""

    sources: frozenset[Status]
    target: Status | None
    wrong_state: str  # `{status}` is the report's status


TRANSITIONS: dict[str, Move] = {
    "submit": Move(
        frozenset({Status.DRAFT}), Status.IN_REVIEW, "only a DRAFT can be submitted for review; this one is {status}"
    ),
    # The last approval publishes; the others leave it IN_REVIEW.
    "approve": Move(
        frozenset({Status.IN_REVIEW}), None, "only a report IN_REVIEW can be reviewed; this one is {status}"
    ),
    "request_changes": Move(
        frozenset({Status.IN_REVIEW}), Status.DRAFT, "only a report IN_REVIEW can be reviewed; this one is {status}"
    ),
    "change_reviewers": Move(
        frozenset({Status.IN_REVIEW}), Status.IN_REVIEW, "reviewers are changed while IN_REVIEW; this one is {status}"
    ),
    # From IN_REVIEW once all approved; from DRAFT only to republish a corrected report (admin).
    "publish": Move(
        frozenset({Status.IN_REVIEW, Status.DRAFT}), Status.PUBLISHED, "a {status} report cannot be published"
    ),
    "unpublish": Move(
        frozenset({Status.PUBLISHED}), Status.DRAFT, "only a PUBLISHED report can be unpublished; this one is {status}"
    ),
    "archive": Move(
        frozenset({Status.PUBLISHED}), Status.ARCHIVED, "only a PUBLISHED report can be archived; this one is {status}"
    ),
}


def check(
    review: Review,
    action: str,
    actor: Actor,
    *,
    reviewers: list[str] | None = None,
    facts: ReportFacts | None = None,
    comment: str | None = None,
    current_version: int | None = None,
) -> None:
    """Raise TransitionRefused with a reason (and its HTTP status) when `actor` may not do `action` now.

    `facts` (None in requests from before the API sent them) add the document's rules; `current_version`
    is the newest document version the workflow has heard of (from `document_edited`)."""
    move = TRANSITIONS.get(action)
    if move is None:
        raise TransitionRefused(f"unknown action {action!r}", 422)
    status = review.status
    if action == "submit":
        _in(move, status)
        _editor(actor, "submitting needs the editor role")
        if not reviewers:
            raise TransitionRefused("name at least one reviewer", 422)
        if facts is not None and facts.empty_required:
            raise TransitionRefused(
                f"fill the required sections before submitting: {', '.join(facts.empty_required)}", 422
            )
    elif action in ("approve", "request_changes"):
        _in(move, status)
        state = review.reviewer(actor.name)
        if state is None:
            raise TransitionRefused(f"{actor.name} is not a reviewer of this post-mortem", 403)
        if action == "request_changes":
            if not (comment or "").strip():
                raise TransitionRefused("say what should change: a comment is required", 422)
            return
        version = facts.version if facts is not None else None
        if state.decision == Decision.APPROVED and (version is None or state.version in (None, version)):
            raise TransitionRefused(f"{actor.name} already approved this revision")
        newest = max(v for v in (current_version, review.approved_version, 0) if v is not None)
        if version is not None and version < newest:
            raise TransitionRefused(
                f"the report changed since version {version} was read (it is at version {newest}): "
                "read it again before approving"
            )
        if facts is not None and facts.open_threads and _would_publish(review, actor.name):
            raise TransitionRefused(
                f"resolve the open comment threads first ({facts.open_threads}): the last approval publishes"
            )
    elif action == "change_reviewers":
        _in(move, status)
        _editor(actor, "changing the reviewers needs the editor role")
        if not reviewers:
            raise TransitionRefused("name at least one reviewer", 422)
    elif action == "publish":
        if actor.role != ADMIN and status != Status.IN_REVIEW:
            raise TransitionRefused("republishing a corrected report needs the admin role", 403)
        if status == Status.IN_REVIEW and not review.all_approved:
            waiting = [r.reviewer for r in review.reviewers if r.decision != Decision.APPROVED]
            raise TransitionRefused(f"waiting for approval from {', '.join(waiting)}")
        if status == Status.DRAFT and review.published_count == 0:
            raise TransitionRefused("a draft is published through review: submit it first")
        _in(move, status)
        if facts is not None and facts.open_threads:
            raise TransitionRefused(f"{facts.open_threads} comment thread(s) are unresolved; resolve them to publish")
    else:  # unpublish, archive: admins only
        _in(move, status)
        if actor.role != ADMIN:
            raise TransitionRefused(f"{ADMIN_ONLY[action]} needs the admin role", 403)


def _in(move: Move, status: Status) -> None:
    if status not in move.sources:
        raise TransitionRefused(move.wrong_state.format(status=status.value))


def _editor(actor: Actor, message: str) -> None:
    if actor.role not in EDITORS:
        raise TransitionRefused(message, 403)


def _would_publish(review: Review, approver: str) -> bool:
    """Whether `approver`'s approval is the last one missing."""
    others = [r for r in review.reviewers if r.reviewer.casefold() != approver.casefold()]
    return all(r.decision == Decision.APPROVED for r in others)


@dataclass
class Outcome:
    """What a move implies beyond the review itself, for the workflow to carry out."""

    to: Status
    publishes: bool = False  # a publication (exports, announcement, tickets) to carry out
    lapsed: list[str] = field(default_factory=list)  # reviewers whose approval of an older version lapsed
    added: list[str] = field(default_factory=list)  # reviewers newly asked


def apply(
    review: Review,
    action: str,
    actor: Actor,
    *,
    now: datetime,
    reviewers: list[str] | None = None,
    facts: ReportFacts | None = None,
    comment: str | None = None,
    current_version: int | None = None,
    slug: Callable[[], str] | None = None,
) -> Outcome:
    """Check, then make the move on `review` (its history, status, reviewers, publication).

    `slug()` draws the public link a first publication gets (the workflow's deterministic random)."""
    check(
        review,
        action,
        actor,
        reviewers=reviewers,
        facts=facts,
        comment=comment,
        current_version=current_version,
    )
    version = facts.version if facts is not None else None
    outcome = Outcome(to=TRANSITIONS[action].target or Status.IN_REVIEW)
    if action == "submit":
        review.reviewers = [ReviewerState(reviewer=r) for r in dict.fromkeys(reviewers or [])]
        outcome.added = [r.reviewer for r in review.reviewers]
    elif action == "change_reviewers":
        kept = {r.reviewer.casefold(): r for r in review.reviewers}
        names = list(dict.fromkeys(reviewers or []))
        review.reviewers = [kept.get(name.casefold()) or ReviewerState(reviewer=name) for name in names]
        outcome.added = [name for name in names if name.casefold() not in kept]
        comment = comment or ", ".join(names)
    elif action in ("approve", "request_changes"):
        state = review.reviewer(actor.name)
        assert state is not None
        decision = Decision.APPROVED if action == "approve" else Decision.CHANGES_REQUESTED
        state.decision, state.comment, state.decided_at, state.version = decision, comment, now, version
        if action == "approve":
            if version is not None:
                outcome.lapsed = lapse(review, version)
            if review.all_approved:
                outcome.to = Status.PUBLISHED
    if outcome.to == Status.PUBLISHED and review.status != Status.PUBLISHED:
        outcome.publishes = True
        review.published_count += 1
        review.public_slug = review.public_slug or (slug() if slug is not None else None)
        # What reviewers approved is what is published; a republished correction is the version read.
        approved = review.approved_version if review.status == Status.IN_REVIEW else None
        review.published_version = approved or version
    review.history.append(
        Transition(
            action=action, by=actor.name, at=now, from_status=review.status, to_status=outcome.to, comment=comment
        )
    )
    review.status = outcome.to
    return outcome


def lapse(review: Review, version: int) -> list[str]:
    """Approvals of a version older than `version` go back to pending: who they were.

    An approval that names no version (from before versions were sent) is left alone: it is not known
    to be older."""
    if review.status != Status.IN_REVIEW:
        return []
    lapsed: list[str] = []
    for state in review.reviewers:
        if state.decision == Decision.APPROVED and state.version is not None and state.version < version:
            state.decision, state.comment, state.decided_at = Decision.PENDING, None, None
            lapsed.append(state.reviewer)
    return lapsed


def can_edit(status: Status, role: str, *, is_reviewer: bool = False) -> bool:
    """DRAFT: editors; IN_REVIEW: also its reviewers; PUBLISHED and ARCHIVED: admins only."""
    if role == ADMIN:
        return True
    if status in (Status.DRAFT, Status.SKIPPED):
        return role in EDITORS
    if status == Status.IN_REVIEW:
        return role in EDITORS or is_reviewer
    return False


BUTTONS = ("submit", "approve", "request_changes", "publish", "unpublish", "archive")
EDITOR_ACTIONS = {"submit", "publish"}  # the API takes these from editors (and up) only


def allowed_actions(review: Review, actor: Actor) -> list[str]:
    """The transitions worth offering `actor` now: the report's status allows them and the caller's
    role (or being a named reviewer) does. What only the document can refuse (empty required sections,
    open threads, pending approvals) is left to the workflow, whose refusal the page shows."""
    allowed: list[str] = []
    for action in BUTTONS:
        if review.status not in TRANSITIONS[action].sources:
            continue
        if action == "publish" and review.status == Status.DRAFT and review.published_count == 0:
            continue  # a first publication goes through review
        if action in EDITOR_ACTIONS and actor.role not in EDITORS:
            continue
        try:
            check(review, action, actor, reviewers=[actor.name], comment="-")
        except TransitionRefused as refused:
            if refused.status == 403:
                continue
        allowed.append(action)
    return allowed
