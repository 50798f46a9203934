"""Draft a report from its incidents: title, sections from the template, key metrics.

Templates run in Jinja2's sandbox, because teams will bring their own; each section's text is
compiled once per process and kept, keyed by the text (`template_catalogue.compiled_section`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from pydantic import BaseModel

from postmortem.evidence.distil import distil
from postmortem.evidence.key_metrics import compute_metrics
from postmortem.evidence.models import SourceStatus, TimelineEntry
from postmortem.evidence.timeline import from_incident
from postmortem.models import (
    Incident,
    KeyMetrics,
    Language,
    PolicyDecision,
    PolicyOutcome,
    Section,
    TemplateVariant,
)
from postmortem.report.template_catalogue import ReportTemplate, builtin_template, compiled_section, section_context
from postmortem.timezones import in_zone

TITLE_LIMIT = 256


class Draft(BaseModel):
    title: str
    language: Language
    variant: TemplateVariant
    sections: list[Section]
    metrics: KeyMetrics


def choose_variant(requested: TemplateVariant, decision: PolicyDecision) -> TemplateVariant:
    if requested != TemplateVariant.AUTO:
        return requested
    return TemplateVariant.FULL if decision.outcome == PolicyOutcome.FULL else TemplateVariant.LIGHTWEIGHT


def default_title(incidents: list[Incident], zone: str, fallback_time: datetime) -> str:
    primary = incidents[0]
    starts = [i.created_at for i in incidents if i.created_at] or [i.resolved_at for i in incidents if i.resolved_at]
    started = min(starts) if starts else fallback_time
    title = f"{in_zone(started, zone).strftime('%Y-%m-%d')} {primary.title}".strip()
    return title[:TITLE_LIMIT]


def render_sections(template: ReportTemplate, context: dict[str, Any], zone: str) -> list[Section]:
    values = section_context(context, template.language, zone)
    sections = []
    for section in template.sections:
        try:
            body = compiled_section(section.text).render(values).strip() if section.text else ""
        except TemplateError as exc:
            raise ValueError(f"template {template.name!r}, section {section.key!r}: {exc}") from exc
        sections.append(
            Section(key=section.key, title=section.title, prompt=section.prompt, required=section.required, body=body)
        )
    return sections


def draft_report(
    incidents: list[Incident],
    *,
    decision: PolicyDecision,
    language: Language,
    variant: TemplateVariant,
    zone: str,
    now: datetime,
    template: ReportTemplate | None = None,
    timeline: list[TimelineEntry] | None = None,
    unavailable: list[SourceStatus] | None = None,
    people: Mapping[str, str] | None = None,
) -> Draft:
    """`timeline` is every gathered entry (without one, the incidents' own facts); the section shows
    the distilled key events, and `unavailable` says which sources could not (yet) be read; `people`
    maps responders' ids and names to emails (the teams file's `[people]`)."""
    if not incidents:
        raise ValueError("a post-mortem needs at least one incident")
    chosen = choose_variant(variant, decision)
    template = template or builtin_template(language, chosen)
    entries = list(timeline) if timeline else [entry for incident in incidents for entry in from_incident(incident)]
    metrics = compute_metrics(incidents, entries, people)
    primary = incidents[0]
    resolver = primary.resolved_by.label if primary.resolved_by else None
    context = {
        "incidents": incidents,
        "primary": primary,
        "metrics": metrics,
        "timeline": distil(entries),
        "unavailable": [s.model_dump(mode="json") for s in unavailable or []],
        "decision": decision,
        "resolver": resolver,
        "flags": {
            "customer_impact": any(i.customer_impact for i in incidents),
            "data_loss": any(i.data_loss for i in incidents),
            "security": any(i.security for i in incidents),
        },
    }
    return Draft(
        title=default_title(incidents, zone, now),
        language=template.language,
        variant=chosen,
        sections=render_sections(template, context, zone),
        metrics=metrics,
    )


def merge_redraft(current: list[Section], fresh: list[Section]) -> list[Section]:
    """Switching template keeps every section a person edited; the rest come from the new one."""
    edited = {section.key: section for section in current if section.edited}
    merged = [
        section.model_copy(update={"body": edited.pop(section.key).body, "edited": True})
        if section.key in edited
        else section
        for section in fresh
    ]
    return merged + list(edited.values())


def model_redrafted(before: list[Section], after: list[Section]) -> list[str]:
    """The sections the model wrote that a redraft (language, zone, template) gave the deterministic
    text: the model is asked to write them again, so its narrative is not silently lost."""
    wrote = {section.key for section in before if section.drafted_by is not None and not section.edited}
    return [s.key for s in after if s.key in wrote and not s.edited and s.drafted_by is None]
