"""REST: read, list, edit and delete post-mortems.

The report's JSON never carries the incidents' raw webhook payloads (they hold whatever the source
sent: emails, hostnames, custom details); admins read them at GET …/{id}/raw.

A report's JSON also shows what the workflow could not do (`problems`, each retried through
api/problems.py) and its 30/60/90-day follow-up checks (`follow_ups`). An edit of a report IN_REVIEW
tells the workflow (`document_edited`), so approvals of the older text go back to pending.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from postmortem.api.coedit import wake_rooms
from postmortem.api.deps import Admin, AdminReport, GatewayDep, StoreDep, Viewer, VisibleReport, reader
from postmortem.api.errors import STALE, TEMPORAL_UNAVAILABLE, WORKFLOW_REFUSED, error, invalid
from postmortem.api.etags import IfMatchHeader, etag, required_version
from postmortem.api.limits import IsoDateTime
from postmortem.app.gateway import TemporalGateway, TemporalRefused, TemporalUnavailable, WorkflowGone
from postmortem.meeting.models import Meeting
from postmortem.models import (
    CauseCategory,
    Incident,
    Language,
    Postmortem,
    Severity,
    Status,
    TemplateVariant,
    Visibility,
)
from postmortem.report import live_document
from postmortem.report.drafting import TITLE_LIMIT, merge_redraft, model_redrafted
from postmortem.report.redraft import redraft
from postmortem.report.rendering import render_markdown
from postmortem.report.template_catalogue import builtin_templates
from postmortem.review.lifecycle import Review, can_edit
from postmortem.review.problems import Problem
from postmortem.store.documents import DocumentWrite
from postmortem.store.postmortems import NotFound, PostmortemChanges, PostmortemFilter, VersionConflict
from postmortem.store.store import Store
from postmortem.timezones import validate_timezone
from postmortem.workflows.identity import follow_up_id_for
from postmortem.workflows.inputs import CancelRequest, DocumentEdited, SectionsRedrafted
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

router = APIRouter(prefix="/api/postmortems", tags=["postmortems"])


class PostmortemSummary(BaseModel):
    id: str
    title: str
    status: Status
    team: str | None
    services: list[str]
    severity: Severity | None
    created_at: datetime
    updated_at: datetime
    version: int


class PostmortemPage(BaseModel):
    items: list[PostmortemSummary]
    next_cursor: str | None = Field(description="pass as `cursor` to get the next page; null on the last page")


class SectionEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=100_000)


class PostmortemPatch(BaseModel):
    """Only the fields sent change; sections are edited by key."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=TITLE_LIMIT)
    sections: dict[str, SectionEdit] | None = None
    language: Language | None = Field(default=None, description="redraft unedited sections in this language")
    variant: TemplateVariant | None = Field(default=None, description="redraft unedited sections from this template")
    timezone: str | None = None
    visibility: Visibility | None = Field(default=None, description="private, team or organisation")
    cause_category: CauseCategory | None = Field(default=None, description="for trends across reports")
    template: str | None = Field(
        default=None,
        description="redraft unedited sections from this template "
        "(a built-in one such as en-full, or the team's own from /api/templates)",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return validate_timezone(value) if value is not None else None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("title must not be blank")
        return value.strip() if value else value


def _summary(pm: Postmortem) -> PostmortemSummary:
    return PostmortemSummary.model_validate(pm.model_dump(include=set(PostmortemSummary.model_fields)))


def _wants_markdown(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "markdown"
    accept = request.headers.get("accept", "")
    return "text/markdown" in accept and "application/json" not in accept


@router.get("", response_model=PostmortemPage, responses={400: error("`cursor` is not one this API gave out")})
async def list_postmortems(
    store: StoreDep,
    token: Viewer,
    status: Status | None = None,
    team: str | None = None,
    service: str | None = None,
    incident_id: str | None = None,
    created_from: IsoDateTime | None = Query(default=None, description="ISO 8601 with a time zone"),
    created_to: IsoDateTime | None = Query(default=None, description="ISO 8601 with a time zone (exclusive)"),
    sort: Literal["created", "updated"] = "created",
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = None,
) -> PostmortemPage:
    items, next_cursor = await store.postmortems.list(
        PostmortemFilter(
            viewer=reader(token),
            status=status,
            team=team,
            service=service,
            incident_id=incident_id,
            created_from=created_from,
            created_to=created_to,
        ),
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    return PostmortemPage(items=[_summary(pm) for pm in items], next_cursor=next_cursor)


class FollowUpView(BaseModel):
    """One 30/60/90-day check of the action items, as the follow-up workflow recorded it."""

    day: int = Field(description="days after publishing")
    at: datetime = Field(description="when it was checked")
    completed: int = Field(default=0, description="action items completed by then")
    open: int = Field(default=0, description="action items still open or in progress")
    overdue: list[str] = Field(default_factory=list, description="descriptions of the overdue items")
    stalled: list[str] = Field(default_factory=list, description="descriptions of open items nobody moved lately")
    verdict: dict[str, Any] | None = Field(default=None, description="did the fix work (the last check only)")


def follow_up_view(check: dict[str, Any]) -> FollowUpView:
    """A stored check (`FollowUpStore.list`: its data with `day` and `checked_at`) as the report shows it."""
    fields = set(FollowUpView.model_fields) - {"at"}
    return FollowUpView.model_validate({"at": check["checked_at"], **{k: v for k, v in check.items() if k in fields}})


class IncidentView(Incident):
    """An incident as a report shows it: without its raw payload (admins: GET …/{id}/raw)."""

    raw: SkipJsonSchema[dict[str, Any]] = Field(default_factory=dict, exclude=True)


class ReportDocument(Postmortem):
    """The stored document as the API answers it."""

    incidents: list[IncidentView] = Field(default_factory=list)  # type: ignore[assignment]


def document(pm: Postmortem) -> ReportDocument:
    return ReportDocument.model_validate(pm.model_dump(exclude={"incidents": {"__all__": {"raw"}}}))


class RawIncident(BaseModel):
    source: str
    id: str
    raw: dict[str, Any] = Field(description="the delivery (or API answer) exactly as the source sent it")


class RawPayloads(BaseModel):
    postmortem_id: str
    incidents: list[RawIncident]


class PostmortemView(ReportDocument):
    meeting: Meeting | None = None
    review: Review | None = None
    problems: list[Problem] = Field(
        default_factory=list, description="side effects that failed for good, oldest first (retry: POST …/retry)"
    )
    follow_ups: list[FollowUpView] = Field(default_factory=list, description="the follow-up checks so far")


@router.get(
    "/{postmortem_id}",
    response_model=PostmortemView,
    responses={200: {"content": {"text/markdown": {}}, "description": "JSON, or Markdown when asked for"}},
)
async def get_postmortem(
    pm: VisibleReport,
    request: Request,
    response: Response,
    store: StoreDep,
    format: Literal["json", "markdown"] | None = Query(default=None),
) -> Postmortem | Response:
    meeting = await store.meetings.get(pm.id)
    if _wants_markdown(request, format):
        return PlainTextResponse(
            render_markdown(pm, meeting), media_type="text/markdown; charset=utf-8", headers={"ETag": etag(pm.version)}
        )
    response.headers["ETag"] = etag(pm.version)
    return PostmortemView(
        **document(pm).model_dump(),
        meeting=meeting,
        review=await store.review.get(pm.id),
        problems=await store.problems.list(pm.id),
        follow_ups=[follow_up_view(check) for check in await store.follow_ups.list(pm.id)],
    )


@router.get(
    "/{postmortem_id}/raw",
    response_model=RawPayloads,
    responses={403: error("admins only: raw payloads hold whatever the source sent")},
)
async def get_raw_payloads(pm: AdminReport) -> RawPayloads:
    """Each incident's raw webhook payload (or REST answer), kept as evidence: admins only."""
    return RawPayloads(
        postmortem_id=pm.id,
        incidents=[RawIncident(source=i.source.value, id=i.id, raw=i.raw) for i in pm.incidents],
    )


@router.patch(
    "/{postmortem_id}",
    response_model=ReportDocument,
    responses={
        **STALE,
        403: error("a published or archived report is editable by admins only; others by editors (and reviewers)"),
        422: invalid("an unknown section or template, or a template that does not render for this report"),
    },
)
async def patch_postmortem(
    current: VisibleReport,
    patch: PostmortemPatch,
    response: Response,
    store: StoreDep,
    gateway: GatewayDep,
    token: Viewer,
    if_match: IfMatchHeader = None,
) -> ReportDocument:
    expected = required_version(if_match)
    review = await store.review.get(current.id)
    if not can_edit(current.status, token.role.value, is_reviewer=review.reviewer(token.name) is not None):
        raise HTTPException(
            403,
            f"a {current.status.value} post-mortem is editable by "
            f"{'admins only' if current.status in (Status.PUBLISHED, Status.ARCHIVED) else 'editors'}",
        )
    changes = PostmortemChanges()
    sections = [section.model_copy() for section in current.sections]
    # One voice: a new time zone redrafts what nobody edited (timeline, metrics, summary) in it too.
    basis = current.model_copy(update={"timezone": patch.timezone}) if patch.timezone is not None else current
    if patch.template is not None:
        try:
            template = builtin_templates().get(patch.template) or (await store.templates.get(patch.template))[0]
        except NotFound as exc:
            raise HTTPException(422, f"no template {patch.template!r}: see GET /api/templates") from exc
        try:
            timeline, statuses = await store.evidence.entries(current.id), await store.evidence.statuses(current.id)
            fresh = redraft(
                basis,
                timeline=timeline,
                statuses=statuses,
                language=template.language,
                variant=template.variant,
                template=template,
            )
        except ValueError as exc:  # a team's template that does not render for this report
            raise HTTPException(422, str(exc)) from exc
        sections = merge_redraft(current.sections, fresh.sections)
        changes.language, changes.variant = template.language, template.variant
        changes.template_name = None if template.builtin else template.name
    elif patch.language is not None or patch.variant is not None or patch.timezone is not None:
        template = None
        if current.template_name:  # a team's own template stays the template of a new zone
            with contextlib.suppress(NotFound):
                template = (await store.templates.get(current.template_name))[0]
        template = template if patch.language is None and patch.variant is None else None
        timeline, statuses = await store.evidence.entries(current.id), await store.evidence.statuses(current.id)
        try:
            fresh = redraft(
                basis,
                timeline=timeline,
                statuses=statuses,
                language=patch.language,
                variant=patch.variant,
                template=template,
            )
        except ValueError as exc:  # a team's template that does not render for this report
            raise HTTPException(422, str(exc)) from exc
        sections = merge_redraft(current.sections, fresh.sections)
        changes.language = patch.language or current.language
        changes.variant = patch.variant or current.variant
    if patch.sections:
        by_key = {section.key: section for section in sections}
        unknown = sorted(set(patch.sections) - set(by_key))
        if unknown:
            raise HTTPException(422, f"unknown section(s) {', '.join(unknown)}; this report has {', '.join(by_key)}")
        for key, edit in patch.sections.items():
            section = by_key[key]
            if edit.title is not None:
                section.title = edit.title
            if edit.body is not None:
                section.body = edit.body
                section.edited = True
                section.drafted_by = None  # a person's text now, not the model's
    redrafted = patch.language is not None or patch.variant is not None or patch.template is not None
    if patch.sections or redrafted or patch.timezone is not None:
        changes.sections = sections
    if patch.title is not None:
        changes.title = patch.title
    if patch.timezone is not None:
        changes.timezone = patch.timezone
    if patch.visibility is not None:
        changes.visibility = patch.visibility
    if patch.cause_category is not None:
        changes.cause_category = patch.cause_category
    if current.author is None:
        changes.author = token.name  # the first person to write in it
    text_changed = changes.sections is not None or changes.title is not None
    live = await _document_write(store, current, changes) if text_changed else None
    try:
        updated = await store.postmortems.update(current.id, expected, changes, datetime.now(UTC), document=live)
    except VersionConflict:
        if live is None:
            raise
        # The base moved under us (a live save): the text may still be at `expected`; once more.
        live = await _document_write(store, current, changes)
        updated = await store.postmortems.update(current.id, expected, changes, datetime.now(UTC), document=live)
    if live is not None:
        wake_rooms(updated.id)
    if (updated.language, updated.timezone) != (current.language, current.timezone):
        # One voice: the invite speaks the report's language and writes its times in the report's zone.
        await store.meetings.follow_report(updated.id, updated.language, updated.timezone, datetime.now(UTC))
    if updated.status == Status.IN_REVIEW:
        await tell_edited(gateway, updated, token.name)
    elif updated.status == Status.DRAFT and (retold := model_redrafted(current.sections, updated.sections)):
        await tell_redrafted(gateway, updated, retold, token.name)
    response.headers["ETag"] = etag(updated.version)
    return document(updated)


async def _document_write(store: Store, current: Postmortem, changes: PostmortemChanges) -> DocumentWrite | None:
    """The edit as a diff of the co-edited document from its last agreed state, so open editors get it
    and what they typed meanwhile stays (None: no document yet; it starts from the stored text)."""
    sync = await store.documents.sync_point(current.id)
    if sync is None:
        return None
    title = changes.title if changes.title is not None else current.title
    sections = {section.key: section.body for section in (changes.sections or current.sections)}
    update, state = live_document.rebase(sync.state, title, sections)
    return DocumentWrite(update=update, state=state, base_version=sync.version, origin="rest")


async def tell_edited(gateway: TemporalGateway, pm: Postmortem, by: str) -> None:
    """Best effort: the edit is stored either way; a lost signal is caught up by the workflow itself
    (an approval of version N sends older approvals back to pending)."""
    with contextlib.suppress(WorkflowGone, TemporalUnavailable, TemporalRefused):
        await gateway.signal(
            pm.workflow_id, PostmortemWorkflow.document_edited, DocumentEdited(version=pm.version, by=by)
        )


async def tell_redrafted(gateway: TemporalGateway, pm: Postmortem, sections: list[str], by: str) -> None:
    """The model's sections got the deterministic text in the new language or zone: the workflow has the
    model write them again. Best effort: if the signal is lost, the deterministic text stays (as when
    the model is away), and the edit is stored either way."""
    with contextlib.suppress(WorkflowGone, TemporalUnavailable, TemporalRefused):
        await gateway.signal(
            pm.workflow_id,
            PostmortemWorkflow.sections_redrafted,
            SectionsRedrafted(version=pm.version, sections=sections, by=by),
        )


@router.delete("/{postmortem_id}", status_code=204, responses={409: WORKFLOW_REFUSED, 503: TEMPORAL_UNAVAILABLE})
async def delete_postmortem(pm: AdminReport, token: Admin, store: StoreDep, gateway: GatewayDep) -> Response:
    # The workflow goes first (it cancels the meeting with METHOD:CANCEL and finishes): if Temporal
    # is down nothing is deleted and the caller can retry.
    try:
        await gateway.update(
            pm.workflow_id,
            PostmortemWorkflow.cancel,
            CancelRequest(reason="post-mortem deleted", requested_by=token.name),
            f"delete-{pm.id}",
        )
    except WorkflowGone:
        # Already finished (skipped by policy, archived, or terminated); an archived report's
        # follow-up checks outlive its run and end with the report.
        await gateway.cancel(follow_up_id_for(pm.id))
    await store.postmortems.delete(pm.id)
    await store.evidence.delete_for(pm.id)
    await store.meetings.delete_for(pm.id)
    await store.review.delete_for(pm.id)
    await store.images.delete_for(pm.id)
    await store.documents.delete_for(pm.id)
    await store.follow_ups.delete_for(pm.id)
    return Response(status_code=204)
