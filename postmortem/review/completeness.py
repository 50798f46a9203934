"""Is a required section filled? Judged by meaning, not by whether any text is there.

A section is empty when nothing but its template's own words remain: its headings and other literal
lines (e.g. "Lessons learned" with only its "### What went well" … sub-headings), its helper prompt,
or blank lines. The Action items section is filled when the report has action items: they are its
content (the table), whether or not anyone typed prose there.
"""

from __future__ import annotations

import re

from postmortem.models import Postmortem, Section
from postmortem.report.template_catalogue import ReportTemplate

ACTION_ITEMS = "action_items"
# Jinja's tags and comments: what is between them is the template's literal text.
_TAGS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def _plain(line: str) -> str:
    return " ".join(line.strip().lstrip(">").split())


def template_lines(text: str) -> set[str]:
    """The literal lines of a section's template text (headings, placeholders), whitespace-normalised."""
    return {plain for fragment in _TAGS.split(text) for line in fragment.splitlines() if (plain := _plain(line))}


def is_empty(section: Section, boilerplate: set[str]) -> bool:
    """Only the template's own lines, the section's prompt, or blanks remain."""
    own = boilerplate | ({_plain(section.prompt)} if section.prompt.strip() else set())
    return all(not plain or plain in own for plain in map(_plain, section.body.splitlines()))


def empty_required(pm: Postmortem, template: ReportTemplate | None) -> list[str]:
    """Titles of the required sections still empty in meaning; `template` is the report's own (a
    team's, or the built-in one of its language and variant), None when it is not known."""
    texts = {section.key: section.text for section in template.sections} if template else {}
    empty = []
    for section in pm.sections:
        if not section.required:
            continue
        if section.key == ACTION_ITEMS and pm.action_items:
            continue
        if is_empty(section, template_lines(texts.get(section.key, ""))):
            empty.append(section.title)
    return empty
