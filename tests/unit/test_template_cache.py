"""Templates are compiled once: each section text once per process, a team's edited text again, the
Markdown report's template once; and the one compiled template still renders in each report's own
zone and language."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import jinja2
import pytest

from postmortem.models import Language, PolicyDecision, PolicyOutcome, Postmortem, Status, TemplateVariant
from postmortem.report import rendering
from postmortem.report.drafting import Draft, draft_report
from postmortem.report.rendering import render_markdown
from postmortem.report.template_catalogue import (
    ReportTemplate,
    SectionTemplate,
    builtin_template,
    compiled_section,
    section_environment,
)
from tests.factories import pagerduty_event

DECISION = PolicyDecision(outcome=PolicyOutcome.FULL, reasons=["SEV2"])
NOW = datetime(2024, 3, 10, 2, 0, tzinfo=UTC)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The source of every Jinja2 compile from now on (any environment), with empty caches."""
    seen: list[str] = []
    original = jinja2.Environment.compile

    def counting(self, source, *args, **kwargs):
        seen.append(source if isinstance(source, str) else "<ast>")
        return original(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    compiled_section.cache_clear()
    yield seen
    compiled_section.cache_clear()


def draft(
    template: ReportTemplate | None = None, *, zone: str = "UTC", language: Language = Language.EN, n: int = 0
) -> Draft:
    incident = pagerduty_event(f"PCACHE{n}").incident
    return draft_report(
        [incident],
        decision=DECISION,
        language=language,
        variant=TemplateVariant.FULL,
        zone=zone,
        now=NOW,
        template=template,
    )


def test_each_section_of_a_builtin_template_is_compiled_once_for_all_reports(compiles: list[str]) -> None:
    texts = {s.text for s in builtin_template(Language.EN, TemplateVariant.FULL).sections if s.text}
    first = draft(n=0)
    assert len(compiles) == len(texts)
    for n in range(1, 20):
        assert draft(n=n).sections[0].body != ""  # drafted, with nothing compiled again
    assert len(compiles) == len(texts)
    assert [s.key for s in first.sections] == [s.key for s in draft(n=99).sections]


def team_template(text: str) -> ReportTemplate:
    return ReportTemplate(
        name="acme",
        language=Language.EN,
        variant=TemplateVariant.FULL,
        sections=[SectionTemplate(key="summary", title="Summary", text=text)],
    )


def test_a_teams_template_is_compiled_again_when_its_text_changes_and_only_then(compiles: list[str]) -> None:
    before = team_template("Before: {{ primary.title }}")
    assert draft(before).sections[0].body.startswith("Before: ")
    assert draft(before, n=1).sections[0].body.startswith("Before: ")
    assert len(compiles) == 1
    edited = team_template("After: {{ primary.title }} in {{ metrics.services | join(', ') }}")
    assert draft(edited).sections[0].body.startswith("After: ")  # the edit shows at once
    assert draft(edited, n=2).sections[0].body.startswith("After: ")
    assert len(compiles) == 2
    assert draft(before).sections[0].body.startswith("Before: ")  # still cached: keyed by the text


def test_one_compiled_template_renders_in_each_reports_zone_and_language(compiles: list[str]) -> None:
    template = team_template("{{ metrics.closed_at | local }} / {{ 125 | duration }}")
    berlin = draft(template, zone="Europe/Berlin").sections[0].body
    tokyo = draft(template, zone="Asia/Tokyo").sections[0].body
    chinese = draft(template.model_copy(update={"language": Language.ZH}), zone="Asia/Shanghai").sections[0].body
    assert berlin.endswith("CEST (13:16 UTC) / 2 min 5 s"), berlin
    assert tokyo.endswith("JST (13:16 UTC) / 2 min 5 s"), tokyo
    assert chinese.endswith("CST (13:16 UTC) / 2 分钟 5 秒"), chinese
    assert len(compiles) == 1


def test_a_broken_template_still_fails_with_its_section_named() -> None:
    with pytest.raises(ValueError, match="section 'summary'"):
        draft(team_template("{{ primary.title"))
    with pytest.raises(ValueError, match="section 'summary'"):
        draft(team_template("{{ nothing_here }}"))


def test_the_sections_share_one_sandbox() -> None:
    assert section_environment() is section_environment()
    assert isinstance(section_environment(), jinja2.sandbox.SandboxedEnvironment)
    with pytest.raises(ValueError, match="unsafe|access"):
        draft(team_template("{{ primary.__class__.__mro__ }}"))


def report(zone: str, language: Language, n: int) -> Postmortem:
    incident = pagerduty_event(f"PMD{n}").incident
    d = draft(zone=zone, language=language, n=n)
    return Postmortem(
        id=f"pm-{n}",
        title=d.title,
        status=Status.DRAFT,
        services=d.metrics.services,
        language=d.language,
        variant=d.variant,
        timezone=zone,
        severity=d.metrics.highest_severity,
        sections=d.sections,
        metrics=d.metrics,
        incidents=[incident],
        workflow_id=f"postmortem-pm-{n}",
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


def test_the_markdown_report_template_is_compiled_once(compiles: list[str]) -> None:
    rendering._report_template.cache_clear()
    reports = [report("Europe/Berlin", Language.EN, 1), report("Asia/Shanghai", Language.ZH, 2)]
    compiles.clear()
    berlin, shanghai, again = (render_markdown(pm) for pm in (*reports, reports[0]))
    assert len(compiles) == 1
    assert berlin == again
    assert "CEST" in berlin and "Key metrics" in berlin  # each report in its own zone and language
    assert "CST" in shanghai and "关键指标" in shanghai
