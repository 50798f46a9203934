"""One voice: a report's meeting agenda reads in the report's language, whichever language it was
planned in (the agenda's own titles, English ↔ Chinese)."""

from __future__ import annotations

from postmortem.meeting.agenda import build_agenda, in_language
from postmortem.meeting.models import AgendaItem
from postmortem.models import Language
from postmortem.report.rendering import render_markdown
from tests.unit.test_exports import meeting, report


def test_a_chinese_report_shows_its_agenda_in_chinese() -> None:
    planned = meeting(agenda=build_agenda(60, Language.EN))  # planned while the report was English
    text = render_markdown(report(Language.ZH), planned)
    assert "1. 开场与对事不对人原则提醒" in text and "4. 根本原因讨论" in text
    assert "Root cause discussion" not in text and "Incident recap" not in text
    back = render_markdown(report(Language.EN), meeting(agenda=build_agenda(60, Language.ZH)))
    assert "Root cause discussion" in back and "根本原因讨论" not in back


def test_titles_we_did_not_write_are_kept() -> None:
    mixed = [AgendaItem(title="Incident recap", minutes=10), AgendaItem(title="Vendor Q&A", minutes=5)]
    assert [item.title for item in in_language(mixed, Language.ZH)] == ["事故回顾", "Vendor Q&A"]
    assert in_language(build_agenda(45, Language.ZH), Language.ZH) == build_agenda(45, Language.ZH)
