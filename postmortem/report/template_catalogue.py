"""The report templates: the built-in ones ship as TOML files beside this module; and the one Jinja2
environment their sections run in, where each section's text is compiled once (`compiled_section`).

Compiling a template (parse, code generation, `compile()` of the generated Python) costs far more
than rendering it, and every report of a team runs the same few texts. So there is one sandboxed
environment per process, whose filters take the report's language and time zone from the render
context instead of being bound to them, and a cache of compiled sections keyed by the section's
text itself: a team that edits its template changes the text, which is a new key (compiled on its
first use), and the old text's entry ages out of the cache. Nothing has to be told about an edit.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Literal

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, Field

from postmortem.models import Language, TemplateVariant
from postmortem.report.formatting import KIND_LABELS, format_duration, format_local, urgency_label

# The render context's keys for the report's language and zone, read by the filters below.
LANGUAGE_KEY = "_report_language"
ZONE_KEY = "_report_zone"
# Distinct section texts kept compiled: the built-in templates have about 60, each team's own a few more.
COMPILED_CACHE_SIZE = 1024


class SectionTemplate(BaseModel):
    key: str
    title: str
    required: bool = False
    prompt: str = ""
    text: str = ""
    # What the optional model is asked to write in this section (postmortem.report.narrative); a
    # section without instructions is never drafted by the model.
    instructions: str = ""


class CustomField(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,49}$")
    label: str = Field(min_length=1, max_length=200)
    type: Literal["text", "number", "date", "select"] = "text"
    required: bool = False
    options: list[str] = Field(default_factory=list)


class ReportTemplate(BaseModel):
    name: str
    language: Language
    variant: TemplateVariant
    description: str = ""
    sections: list[SectionTemplate]
    fields: list[CustomField] = Field(default_factory=list)
    builtin: bool = False


@lru_cache(maxsize=1)
def builtin_templates() -> dict[str, ReportTemplate]:
    found = {}
    for entry in resources.files("postmortem.report.templates").iterdir():
        if entry.name.endswith(".toml"):
            template = ReportTemplate.model_validate(
                {**tomllib.loads(entry.read_text(encoding="utf-8")), "builtin": True}
            )
            found[template.name] = template
    return found


def builtin_template(language: Language, variant: TemplateVariant) -> ReportTemplate:
    if variant == TemplateVariant.AUTO:
        raise ValueError("the 'auto' variant is decided by the post-mortem policy before drafting")
    return builtin_templates()[f"{language.value}-{variant.value}"]


@pass_context
def _local(context: Context, value: object) -> str:
    return format_local(value, context.get(ZONE_KEY, "UTC"))  # type: ignore[arg-type]


@pass_context
def _duration(context: Context, value: object) -> str:
    return format_duration(value, context.get(LANGUAGE_KEY, Language.EN))  # type: ignore[arg-type]


@pass_context
def _kind_label(context: Context, kind: object) -> str:
    return KIND_LABELS[context.get(LANGUAGE_KEY, Language.EN)].get(str(kind), str(kind))


@pass_context
def _urgency(context: Context, value: object) -> str:
    return urgency_label(str(value), context.get(LANGUAGE_KEY, Language.EN))


@lru_cache(maxsize=1)
def section_environment() -> SandboxedEnvironment:
    """The one sandbox every section template runs in (teams bring their own templates)."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=False)
    env.filters["local"] = _local
    env.filters["duration"] = _duration
    env.filters["kind_label"] = _kind_label
    env.filters["urgency"] = _urgency
    return env


@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def compiled_section(text: str) -> Template:
    """`text` compiled in `section_environment`, once per distinct text (the cache key is the content).

    Render it with `section_context(...)`'s keys in the context; a syntax error is raised (and not cached).
    """
    return section_environment().from_string(text)


def section_context(context: dict[str, object], language: Language, zone: str) -> dict[str, object]:
    """`context` with the report's language and zone for the filters."""
    return {**context, LANGUAGE_KEY: language, ZONE_KEY: zone}


SECTION_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


def template_problems(template: ReportTemplate) -> list[str]:
    """What is wrong with a team's template, each naming the section or field; empty when fine."""
    problems: list[str] = []
    if not template.sections:
        problems.append("a template needs at least one section")
    keys = [section.key for section in template.sections]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"section key {key!r} is used more than once")
    environment = section_environment()
    for section in template.sections:
        if not SECTION_KEY.match(section.key):
            problems.append(f"section key {section.key!r} must be lower-case letters, digits and underscores")
        try:
            environment.parse(section.text)
        except TemplateSyntaxError as exc:
            problems.append(f"section {section.key!r}: template error on line {exc.lineno}: {exc.message}")
    names = [f.name for f in template.fields]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"custom field {name!r} is defined more than once")
    for item in template.fields:
        if item.type == "select" and not item.options:
            problems.append(f"custom field {item.name!r} is a select without options")
    return problems
