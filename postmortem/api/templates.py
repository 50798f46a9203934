"""REST: report templates. Built-in ones (English and Chinese; full, lightweight, status page,
regulated) are listed and copyable but not editable; teams create, replace and delete their own."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from postmortem.api.deps import Admin, Editor, StoreDep, Viewer
from postmortem.api.errors import STALE, error, invalid
from postmortem.api.etags import IfMatchHeader, etag, required_version
from postmortem.models import Language, TemplateVariant
from postmortem.report.template_catalogue import (
    CustomField,
    ReportTemplate,
    SectionTemplate,
    builtin_templates,
    template_problems,
)
from postmortem.store.store import Store
from postmortem.store.templates import AlreadyExists

router = APIRouter(prefix="/api/templates", tags=["templates"])
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,99}$")


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="lower-case letters, digits, - and _")
    language: Language = Language.EN
    variant: TemplateVariant = TemplateVariant.FULL
    description: str = Field(default="", max_length=1000)
    sections: list[SectionTemplate] | None = Field(default=None, description="omit with copy_from")
    fields: list[CustomField] = Field(default_factory=list)
    copy_from: str | None = Field(default=None, description="start from this template's sections and fields")


async def _find(store: Store, name: str) -> tuple[ReportTemplate, int]:
    if name in builtin_templates():
        return builtin_templates()[name], 0
    return await store.templates.get(name)


async def _validated(store: Store, body: TemplateBody) -> ReportTemplate:
    if not NAME.match(body.name):
        raise HTTPException(422, f"template name {body.name!r} must be 2–100 lower-case letters, digits, - or _")
    if body.name in builtin_templates():
        raise HTTPException(409, f"{body.name!r} is a built-in template's name; choose another")
    sections, fields = body.sections, body.fields
    if body.copy_from:
        source, _ = await _find(store, body.copy_from)
        sections = sections if sections is not None else source.sections
        fields = fields or source.fields
    if sections is None:
        raise HTTPException(422, "give the template's sections, or copy_from an existing template")
    template = ReportTemplate(
        name=body.name,
        language=body.language,
        variant=body.variant,
        description=body.description,
        sections=sections,
        fields=fields,
    )
    problems = template_problems(template)
    if problems:
        raise HTTPException(422, "; ".join(problems))
    return template


@router.get("", response_model=list[ReportTemplate])
async def list_templates(store: StoreDep, _: Viewer) -> list[ReportTemplate]:
    custom = [template for template, _ in await store.templates.list()]
    return sorted(builtin_templates().values(), key=lambda t: t.name) + custom


@router.get("/{name}", response_model=ReportTemplate)
async def get_template(name: str, response: Response, store: StoreDep, _: Viewer) -> ReportTemplate:
    template, version = await _find(store, name)
    if not template.builtin:
        response.headers["ETag"] = etag(version)
    return template


@router.post(
    "",
    response_model=ReportTemplate,
    status_code=201,
    responses={
        404: error("`copy_from` names no template"),
        409: error("a template of this name exists, or it is a built-in template's name"),
        422: invalid("a name we do not accept, or a template that does not render"),
    },
)
async def create_template(body: TemplateBody, response: Response, store: StoreDep, _: Editor) -> ReportTemplate:
    template = await _validated(store, body)
    try:
        version = await store.templates.create(template, datetime.now(UTC))
    except AlreadyExists as exc:
        raise HTTPException(409, str(exc)) from exc
    response.headers["ETag"] = etag(version)
    return template


@router.put(
    "/{name}",
    response_model=ReportTemplate,
    responses={
        **STALE,
        403: error("built-in templates are not editable"),
        404: error("no template of this name, or `copy_from` names none"),
        422: invalid("the body names another template, or the template does not render"),
    },
)
async def replace_template(
    name: str,
    body: TemplateBody,
    response: Response,
    store: StoreDep,
    _: Editor,
    if_match: IfMatchHeader = None,
) -> ReportTemplate:
    if name in builtin_templates():
        raise HTTPException(403, f"built-in template {name!r} is not editable: copy it with copy_from")
    if body.name != name:
        raise HTTPException(422, f"the body names {body.name!r} but the URL {name!r}")
    await store.templates.get(name)
    template = await _validated(store, body)
    version = await store.templates.replace(template, required_version(if_match), datetime.now(UTC))
    response.headers["ETag"] = etag(version)
    return template


@router.delete("/{name}", status_code=204, responses={403: error("built-in templates cannot be deleted")})
async def delete_template(name: str, store: StoreDep, _: Admin) -> Response:
    if name in builtin_templates():
        raise HTTPException(403, f"built-in template {name!r} cannot be deleted")
    await store.templates.delete(name)
    return Response(status_code=204)
