"""REST: the review lifecycle (through workflow Updates), comments and exports (the public summary is a page: postmortem/web).

The workflow owns the lifecycle: its Update validators apply every rule (`review.lifecycle.check`).
The API does not judge a transition; it reads what the rules need to know of the document from the
store (`ReportFacts`: the version, empty required sections, open threads), sends it with the Update,
and answers with the status the validator's refusal carries (403 wrong caller, 409 wrong state, 422
bad input). What the API still checks is the request itself (its body, in pydantic) and the people
it names (reviewers must be known). `Idempotency-Key` makes a retried click apply once.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from postmortem.activities.link import LinkedIncident
from postmortem.api.deps import (
    EditableReport,
    Editor,
    GatewayDep,
    ServicesDep,
    StoreDep,
    Viewer,
    VisibleReport,
)
from postmortem.api.errors import TEMPORAL_UNAVAILABLE, error, invalid
from postmortem.api.people import require_known, unknown_people
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway, TemporalRefused, TemporalUnavailable, WorkflowGone
from postmortem.models import Postmortem, Source, TemplateVariant
from postmortem.report.template_catalogue import ReportTemplate, builtin_template
from postmortem.review.completeness import empty_required
from postmortem.review.lifecycle import Actor, ReportFacts, Review
from postmortem.store.errors import NotFound
from postmortem.store.review import Comment
from postmortem.store.store import Store
from postmortem.store.tokens import Role, TokenInfo
from postmortem.workflows.identity import is_safe_incident_id
from postmortem.workflows.inputs import (
    CommentPosted,
    DecisionRequest,
    LinkRequest,
    ReviewersRequest,
    SubmitRequest,
    TransitionRequest,
)
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

router = APIRouter(prefix="/api/postmortems/{postmortem_id}", tags=["review"])

Format = Literal["md", "html", "json", "pdf"]

# What a transition can answer besides 200: the workflow validator's refusal, and Temporal's.
TRANSITION: dict[int | str, dict[str, Any]] = {
    403: error("this caller may not make this transition (e.g. only a reviewer approves)"),
    409: error("the report's state does not allow it (e.g. open comment threads), or its workflow has finished"),
    422: invalid("the workflow refused the request's content (e.g. empty required sections), or a field is invalid"),
    503: TEMPORAL_UNAVAILABLE,
}


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be blank")
    return value


Reviewers = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=320)]],
    Field(min_length=1, max_length=20, description="reviewers' emails: API token names or people of the teams file"),
]


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewers: Reviewers


class ReviewersBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewers: Reviewers


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=10_000)


class ChangesBody(BaseModel):
    """Requesting changes says what should change."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(min_length=1, max_length=10_000, description="what should change")

    _said = field_validator("comment")(_not_blank)


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    section: str = Field(min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=10_000)
    parent_id: str | None = None


def _actor(token: TokenInfo) -> Actor:
    return Actor(name=token.name, role=token.role.value)


async def report_template(store: Store, pm: Postmortem) -> ReportTemplate | None:
    """The template the report was drafted from: the team's own, else the built-in one."""
    if pm.template_name:
        with contextlib.suppress(NotFound):  # the team deleted it: judge against the built-in one
            return (await store.templates.get(pm.template_name))[0]
    if pm.variant == TemplateVariant.AUTO:
        return None
    return builtin_template(pm.language, pm.variant)


async def report_facts(store: Store, pm: Postmortem) -> ReportFacts:
    """What the lifecycle rules need to know of the document as it is stored now; a required
    section is empty when only its template's headings and prompt remain (review/completeness.py)."""
    return ReportFacts(
        version=pm.version,
        empty_required=empty_required(pm, await report_template(store, pm)),
        open_threads=len(await store.review.comments(pm.id, unresolved_only=True)),
    )


async def _move(
    gateway: TemporalGateway, pm: Postmortem, action: str, update: Any, request: BaseModel, key: str | None
) -> Review:
    """Send the Update; a refusal of its validator answers with its own status (api/errors.py)."""
    return await gateway.update(pm.workflow_id, update, request, f"{action}-{key}" if key else None)


IdempotencyKey = Annotated[str | None, Header(max_length=200)]


@router.post("/submit", response_model=Review, responses=TRANSITION)
async def submit(
    pm: EditableReport,
    body: SubmitBody,
    services: ServicesDep,
    gateway: GatewayDep,
    token: Editor,
    idempotency_key: IdempotencyKey = None,
) -> Review:
    await require_known(services, body.reviewers)
    facts = await report_facts(services.store, pm)
    request = SubmitRequest(actor=_actor(token), reviewers=body.reviewers, facts=facts)
    return await _move(gateway, pm, "submit", PostmortemWorkflow.submit, request, idempotency_key)


@router.post("/reviewers", response_model=Review, responses=TRANSITION)
async def change_reviewers(
    pm: EditableReport,
    body: ReviewersBody,
    services: ServicesDep,
    gateway: GatewayDep,
    token: Editor,
    idempotency_key: IdempotencyKey = None,
) -> Review:
    """Who reviews a report IN_REVIEW: the decisions of those who stay are kept."""
    await require_known(services, body.reviewers)
    request = ReviewersRequest(actor=_actor(token), reviewers=body.reviewers)
    return await _move(gateway, pm, "reviewers", PostmortemWorkflow.change_reviewers, request, idempotency_key)


@router.post("/approve", response_model=Review, responses=TRANSITION)
async def approve(
    pm: VisibleReport,
    body: DecisionBody,
    store: StoreDep,
    gateway: GatewayDep,
    token: Viewer,
    idempotency_key: IdempotencyKey = None,
) -> Review:
    """Approves the version the caller read (the stored one): an edit after it makes the approval lapse."""
    request = DecisionRequest(actor=_actor(token), comment=body.comment, facts=await report_facts(store, pm))
    return await _move(gateway, pm, "approve", PostmortemWorkflow.approve, request, idempotency_key)


@router.post("/request-changes", response_model=Review, responses=TRANSITION)
async def request_changes(
    pm: VisibleReport,
    body: ChangesBody,
    store: StoreDep,
    gateway: GatewayDep,
    token: Viewer,
    idempotency_key: IdempotencyKey = None,
) -> Review:
    request = DecisionRequest(actor=_actor(token), comment=body.comment, facts=await report_facts(store, pm))
    return await _move(gateway, pm, "request_changes", PostmortemWorkflow.request_changes, request, idempotency_key)


async def _simple(
    store: Store, gateway: TemporalGateway, pm: Postmortem, action: str, update: Any, token: TokenInfo, key: str | None
) -> Review:
    request = TransitionRequest(actor=_actor(token), facts=await report_facts(store, pm))
    return await _move(gateway, pm, action, update, request, key)


@router.post("/publish", response_model=Review, responses=TRANSITION)
async def publish(
    pm: EditableReport,
    store: StoreDep,
    gateway: GatewayDep,
    token: Editor,
    idempotency_key: IdempotencyKey = None,
) -> Review:
    return await _simple(store, gateway, pm, "publish", PostmortemWorkflow.publish, token, idempotency_key)


@router.post("/unpublish", response_model=Review, responses=TRANSITION)
async def unpublish(
    pm: VisibleReport,
    store: StoreDep,
    gateway: GatewayDep,
    token: Viewer,
    idempotency_key: IdempotencyKey = None,
) -> Review:
    return await _simple(store, gateway, pm, "unpublish", PostmortemWorkflow.unpublish, token, idempotency_key)


@router.post("/archive", response_model=Review, responses=TRANSITION)
async def archive(
    pm: VisibleReport,
    store: StoreDep,
    gateway: GatewayDep,
    token: Viewer,
    idempotency_key: IdempotencyKey = None,
) -> Review:
    return await _simple(store, gateway, pm, "archive", PostmortemWorkflow.archive, token, idempotency_key)


class LinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Source
    incident_id: str = Field(min_length=1, max_length=150)


@router.post(
    "/incidents",
    response_model=LinkedIncident,
    responses={
        409: error("the incident belongs to a report already, or the workflow refused the link or has finished"),
        422: invalid("an incident id with characters we do not accept"),
        503: TEMPORAL_UNAVAILABLE,
    },
)
async def link_incident(
    pm: EditableReport, body: LinkBody, store: StoreDep, gateway: GatewayDep, token: Editor
) -> LinkedIncident:
    """Link another incident (any source) to this report; its webhooks then update this report."""
    if not is_safe_incident_id(body.incident_id):
        raise HTTPException(422, f"incident id {body.incident_id!r} has characters we do not accept")
    owner = await store.postmortems.owner_of(body.source.value, body.incident_id)
    if owner is not None:
        where = "here already" if owner == pm.id else f"to post-mortem {owner}"
        raise HTTPException(409, f"{body.source.value} incident {body.incident_id} belongs {where}")
    return await gateway.update(
        pm.workflow_id,
        PostmortemWorkflow.link_incident,
        LinkRequest(actor=_actor(token), source=body.source, incident_id=body.incident_id),
        f"link-{body.source.value}-{body.incident_id}",
    )


@router.get("/review", response_model=Review)
async def get_review(pm: VisibleReport, store: StoreDep) -> Review:
    return await store.review.get(pm.id)


@router.get("/comments", response_model=list[Comment])
async def list_comments(pm: VisibleReport, store: StoreDep) -> list[Comment]:
    return await store.review.comments(pm.id)


@router.post(
    "/comments",
    response_model=Comment,
    status_code=201,
    responses={404: error("no such report, or no comment `parent_id` in it"), 422: invalid("an unknown section")},
)
async def add_comment(
    pm: VisibleReport, body: CommentBody, store: StoreDep, token: Viewer, services: ServicesDep, gateway: GatewayDep
) -> Comment:
    """Stores the comment; whoever it @mentions (people the service knows) is told by the workflow."""
    if body.parent_id is None and body.section not in {s.key for s in pm.sections}:
        raise HTTPException(
            422, f"unknown section {body.section!r}; this report has {', '.join(s.key for s in pm.sections)}"
        )
    comment = await store.review.add_comment(
        pm.id,
        section=body.section,
        author=token.name,
        body=body.body,
        parent_id=body.parent_id,
        now=datetime.now(UTC),
    )
    await _tell_mentioned(services, gateway, pm, comment)
    return comment


async def _tell_mentioned(services: Services, gateway: TemporalGateway, pm: Postmortem, comment: Comment) -> None:
    """Best effort, like `document_edited`: the comment is stored either way. While Temporal is away
    the signal is lost and those mentioned are not emailed; they still see the comment on the page."""
    unknown = set(await unknown_people(services, comment.mentions))
    people = [name for name in comment.mentions if name not in unknown]
    if not people:
        return
    posted = CommentPosted(
        comment_id=comment.id, by=comment.author, section=comment.section, mentions=people, excerpt=comment.body[:300]
    )
    with contextlib.suppress(WorkflowGone, TemporalUnavailable, TemporalRefused):
        await gateway.signal(pm.workflow_id, PostmortemWorkflow.comment_posted, posted)


@router.post(
    "/comments/{comment_id}/resolve",
    response_model=Comment,
    responses={403: error("resolving a thread needs the editor role or being its author")},
)
async def resolve_comment(pm: VisibleReport, comment_id: str, store: StoreDep, token: Viewer) -> Comment:
    """Resolves the whole thread (`comment_id` may be a reply): its author, or an editor."""
    comments = {comment.id: comment for comment in await store.review.comments(pm.id)}
    comment = comments.get(comment_id)
    if comment is None:
        raise HTTPException(404, f"no comment {comment_id!r} in post-mortem {pm.id!r}")
    root = comments.get(comment.parent_id or comment.id, comment)
    if token.role.rank < Role.EDITOR.rank and root.author.casefold() != token.name.casefold():
        raise HTTPException(
            403,
            f"resolving this thread needs the editor role or being its author ({root.author}); "
            f"token {token.name!r} has {token.role.value}",
        )
    return await store.review.resolve_thread(pm.id, comment_id, token.name, datetime.now(UTC))


@router.get(
    "/export",
    response_class=Response,
    responses={
        200: {"content": {"text/markdown": {}, "text/html": {}, "application/json": {}, "application/pdf": {}}},
        409: error("not published yet: exports are made on publishing"),
    },
)
async def export(
    pm: VisibleReport,
    store: StoreDep,
    format: Format = Query(description="md, html, json or pdf"),
) -> Response:
    stored = await store.review.get_export(pm.id, format)
    if stored is None:
        raise HTTPException(409, "this post-mortem has not been published yet: exports are made on publishing")
    media_type, content, published = stored
    headers = {"X-Published-Revision": str(published), "X-Content-Type-Options": "nosniff"}
    if format == "html":
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'"
    if format == "pdf":
        headers["Content-Disposition"] = f'attachment; filename="{pm.id}.pdf"'
    return Response(content, media_type=media_type, headers=headers)
