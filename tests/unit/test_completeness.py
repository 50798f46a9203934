"""Required sections are judged by meaning: template headings and prompts alone are empty, action
items fill their section (the built-in templates, English and Chinese)."""

from __future__ import annotations

from datetime import UTC, datetime

from postmortem.models import ActionItem, Language, Postmortem, Section, Status, TemplateVariant
from postmortem.report.template_catalogue import builtin_template
from postmortem.review.completeness import empty_required, template_lines

NOW = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def report(language: Language, bodies: dict[str, str], items: int = 0) -> tuple[Postmortem, list[Section]]:
    template = builtin_template(language, TemplateVariant.FULL)
    sections = [
        Section(key=s.key, title=s.title, prompt=s.prompt, required=s.required, body=bodies.get(s.key, "Written."))
        for s in template.sections
    ]
    pm = Postmortem(
        id="pm-1",
        title="t",
        status=Status.DRAFT,
        language=language,
        variant=TemplateVariant.FULL,
        timezone="UTC",
        sections=sections,
        action_items=[
            ActionItem(id=f"a{i}", description=f"Fix {i}", created_at=NOW, updated_at=NOW) for i in range(items)
        ],
        workflow_id="wf",
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )
    return pm, sections


def title(pm: Postmortem, key: str) -> str:
    return next(s.title for s in pm.sections if s.key == key)


def test_lessons_learned_with_only_its_sub_headings_is_empty() -> None:
    template = builtin_template(Language.EN, TemplateVariant.FULL)
    headings = next(s.text for s in template.sections if s.key == "lessons_learned").strip()
    pm, _ = report(Language.EN, {"lessons_learned": headings, "action_items": ""}, items=0)
    assert empty_required(pm, template) == ["Action items", "Lessons learned"]
    written = headings.replace("### What went well", "### What went well\n\nThe rollback took two minutes.")
    pm, _ = report(Language.EN, {"lessons_learned": written, "action_items": ""}, items=0)
    assert empty_required(pm, template) == ["Action items"]


def test_the_action_items_section_is_filled_by_action_items() -> None:
    template = builtin_template(Language.EN, TemplateVariant.FULL)
    pm, _ = report(Language.EN, {"action_items": ""}, items=3)
    assert empty_required(pm, template) == []


def test_a_prompt_or_a_placeholder_left_in_place_is_empty() -> None:
    template = builtin_template(Language.ZH, TemplateVariant.FULL)
    timeline = next(s for s in template.sections if s.key == "timeline")
    placeholder = next(line for line in template_lines(timeline.text) if line.startswith("- _"))
    root = next(s for s in template.sections if s.key == "root_cause")
    pm, _ = report(Language.ZH, {"timeline": placeholder, "root_cause": f"> {root.prompt}\n\n"}, items=1)
    assert empty_required(pm, template) == [title(pm, "timeline"), title(pm, "root_cause")]
    # Real text beside a heading of the template's own is content.
    pm, _ = report(Language.ZH, {"timeline": f"{placeholder}\n- 09:00 回滚完成"}, items=1)
    assert empty_required(pm, template) == []


def test_drafted_facts_are_content_and_without_a_template_only_blanks_are_empty() -> None:
    template = builtin_template(Language.EN, TemplateVariant.FULL)
    pm, _ = report(Language.EN, {"impact": "- Services: checkout", "summary": " \n"}, items=1)
    assert empty_required(pm, template) == ["Summary"]
    assert empty_required(pm, None) == ["Summary"]
