"""The report templates: the built-in ones ship as TOML files beside this module."""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Literal

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, Field

from postmortem.models import Language, TemplateVariant


class SectionTemplate(BaseModel):
    key: str
    title: str
    required: bool = False
    prompt: str = ""
    text: str = ""


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


SECTION_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


def template_problems(template: ReportTemplate) -> list[str]:
    """What is wrong with a team's template, each naming the section or field; empty when fine."""
    problems: list[str] = []
    if not template.sections:
        problems.append("a template needs at least one section")
    keys = [section.key for section in template.sections]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"section key {key!r} is used more than once")
    environment = SandboxedEnvironment()
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
