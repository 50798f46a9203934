"""One voice: a report's meeting agenda reads in the report's language, whichever language it was
planned in (the agenda's own titles, English ↔ Chinese)."""

from __future__ import annotations

import re
from string import Formatter

import pypdfium2 as pdfium
import pytest

from postmortem.meeting.agenda import build_agenda, in_language
from postmortem.meeting.models import AgendaItem
from postmortem.models import ActionItemStatus, Language, Priority, Status
from postmortem.report.export_pdf import export_pdf
from postmortem.report.exports import export_html, export_markdown
from postmortem.report.rendering import render_markdown
from postmortem.review.notices import SUBJECTS, WORDS, NoticeKind
from tests.unit.test_exports import action_item, meeting, report


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


ENGLISH_WORDS = re.compile(
    r"\b(DRAFT|IN_REVIEW|PUBLISHED|ARCHIVED|SKIPPED|OPEN|IN_PROGRESS|COMPLETED|WONT_DO|HIGH|MEDIUM|LOW|full)\b"
)


@pytest.mark.parametrize("status", [Status.DRAFT, Status.PUBLISHED])
def test_a_chinese_report_prints_no_english_status_words(status: Status) -> None:
    """Today OPEN showed in a Chinese table: statuses, priorities and the template variant are words
    of the report's language in the Markdown, the HTML and the PDF (its text as PDFium reads it)."""
    items = [
        action_item(id="ai-1", status=ActionItemStatus.OPEN, priority=Priority.HIGH),
        action_item(id="ai-2", status=ActionItemStatus.IN_PROGRESS, priority=Priority.MEDIUM),
        action_item(id="ai-3", status=ActionItemStatus.COMPLETED, priority=Priority.LOW),
        action_item(id="ai-4", status=ActionItemStatus.WONT_DO, priority=Priority.LOW),
    ]
    pm = report(Language.ZH, status=status, action_items=items)
    markdown, html = export_markdown(pm, meeting()), export_html(pm, meeting())
    document = pdfium.PdfDocument(export_pdf(pm, meeting()))
    try:
        pdf_text = "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    finally:
        document.close()
    for name, text in (("markdown", markdown), ("html", html), ("pdf", pdf_text)):
        assert not ENGLISH_WORDS.findall(text), (name, ENGLISH_WORDS.findall(text))
        assert "待处理" in text and "进行中" in text and "已完成" in text and "不处理" in text, name
    assert ("草稿" if status == Status.DRAFT else "已发布") in pdf_text
    english = export_markdown(report(Language.EN, status=status, action_items=items), meeting())
    assert "| OPEN |" in english and "| HIGH |" in english  # English keeps the values the API speaks


def test_a_chinese_summary_says_the_urgency_in_chinese() -> None:
    """PagerDuty's `high` stood in a Chinese Summary ("紧急程度 high"); an English one keeps it."""
    zh = next(s.body for s in report(Language.ZH).sections if s.key == "summary")
    en = next(s.body for s in report(Language.EN).sections if s.key == "summary")
    assert "紧急程度 高" in zh and "high" not in zh, zh
    assert "high urgency" in en, en


def test_every_notice_has_its_words_in_both_languages_with_the_same_blanks() -> None:
    """A notice is written in the report's language when sent: a key or a blank missing in one language
    would fail that message for good (or leave a value out)."""

    def blanks(text: str) -> set[str]:
        return {name for _, name, _, _ in Formatter().parse(text) if name}

    assert WORDS[Language.EN].keys() == WORDS[Language.ZH].keys()
    for key, english in WORDS[Language.EN].items():
        assert blanks(english) == blanks(WORDS[Language.ZH][key]), key
    assert all(SUBJECTS[language].keys() == set(NoticeKind) for language in Language)
