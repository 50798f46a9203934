"""The report templates: the built-in ones ship as TOML files beside this module."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel

from postmortem.models import Language, TemplateVariant


class SectionTemplate(BaseModel):
    key: str
    title: str
    required: bool = False
    prompt: str = ""
    text: str = ""


class ReportTemplate(BaseModel):
    name: str
    language: Language
    variant: TemplateVariant
    description: str = ""
    sections: list[SectionTemplate]


@lru_cache(maxsize=1)
def builtin_templates() -> dict[str, ReportTemplate]:
    found = {}
    for entry in resources.files("postmortem.templates").iterdir():
        if entry.name.endswith(".toml"):
            template = ReportTemplate.model_validate(tomllib.loads(entry.read_text(encoding="utf-8")))
            found[template.name] = template
    return found


def builtin_template(language: Language, variant: TemplateVariant) -> ReportTemplate:
    if variant == TemplateVariant.AUTO:
        raise ValueError("the 'auto' variant is decided by the post-mortem policy before drafting")
    return builtin_templates()[f"{language.value}-{variant.value}"]
