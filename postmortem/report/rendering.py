"""Render a stored post-mortem as Markdown, in its own language and its team's time zone.

The report template is read and compiled once per process (`_report_template`); its filters take the
report's zone and language from the render context, so one compiled template serves every report.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from jinja2 import Environment, StrictUndefined, Template, pass_context
from jinja2.runtime import Context

from postmortem.meeting.agenda import agenda_text, in_language
from postmortem.meeting.models import Meeting
from postmortem.models import KeyMetrics, Language, Postmortem, ResponderRole, Status
from postmortem.report.formatting import format_duration, format_local

LABELS = {
    Language.EN: {
        "status": "Status",
        "severity": "Severity",
        "team": "Team",
        "template": "Template",
        "key_metrics": "Key metrics",
        "metric": "Metric",
        "value": "Value",
        "highest_severity": "Highest severity",
        "impact_started": "Impact started",
        "started": "Triggered",
        "closed": "Resolved",
        "duration": "Total impact duration",
        "ttd": "Time to detect",
        "tta": "Time to acknowledge",
        "ttr": "Time to resolve",
        "responders": "Responders",
        "services": "Services",
        "incidents": "Incidents",
        "item": "Action item",
        "owner": "Owner",
        "due": "Due",
        "priority": "Priority",
        "item_status": "Status",
        "ticket": "Ticket",
        "meeting": "Review meeting",
        "when": "When",
        "attendees": "Attendees",
        "agenda": "Agenda",
        "cancelled": "cancelled",
        "video": "Video call",
        "similar": "Have we seen this before?",
        "similar_open": "open action items",
        "drafted": "Drafted by a language model from the timeline: every sentence cites its evidence. Edit the section to make it yours",
    },
    Language.ZH: {
        "status": "状态",
        "severity": "严重级别",
        "team": "团队",
        "template": "模板",
        "key_metrics": "关键指标",
        "metric": "指标",
        "value": "值",
        "highest_severity": "最高严重级别",
        "impact_started": "影响开始",
        "started": "触发时间",
        "closed": "解决时间",
        "duration": "总影响时长",
        "ttd": "发现耗时",
        "tta": "确认耗时",
        "ttr": "解决耗时",
        "responders": "响应人员",
        "services": "服务",
        "incidents": "事故",
        "item": "行动项",
        "owner": "负责人",
        "due": "截止日期",
        "priority": "优先级",
        "item_status": "状态",
        "ticket": "工单",
        "meeting": "复盘会议",
        "when": "时间",
        "attendees": "参会人",
        "agenda": "议程",
        "cancelled": "已取消",
        "video": "视频会议",
        "similar": "以前发生过吗？",
        "similar_open": "未完成的行动项",
        "drafted": "由语言模型根据时间线起草，每句话都标注了依据。编辑本节即视为人工确认",
    },
}


# One voice: the words of our enums as a report in that language prints them (English keeps the
# values, which are what the API and the CSV say).
ENUM_WORDS: dict[Language, dict[str, str]] = {
    Language.EN: {},
    Language.ZH: {
        "DRAFT": "草稿",
        "IN_REVIEW": "评审中",
        "PUBLISHED": "已发布",
        "ARCHIVED": "已归档",
        "SKIPPED": "无需复盘",
        "OPEN": "待处理",
        "IN_PROGRESS": "进行中",
        "COMPLETED": "已完成",
        "WONT_DO": "不处理",
        "HIGH": "高",
        "MEDIUM": "中",
        "LOW": "低",
        "full": "完整版",
        "lightweight": "简版",
        "status_page": "状态页版",
        "regulated": "合规版",
        "auto": "自动",
    },
}


def enum_word(value: object, language: Language) -> str:
    """A status, priority or template variant in `language`."""
    text = str(getattr(value, "value", value))
    return ENUM_WORDS[language].get(text, text)


ROLE_NAMES: dict[Language, dict[ResponderRole, str]] = {
    Language.EN: {
        "assigned": "assigned",
        "acknowledged": "acknowledged",
        "escalated_to": "escalated to",
        "reassigned_to": "reassigned to",
        "resolved": "resolved",
        "wrote_note": "wrote a note",
    },
    Language.ZH: {
        "assigned": "被指派",
        "acknowledged": "确认",
        "escalated_to": "被升级至",
        "reassigned_to": "被转派",
        "resolved": "解决",
        "wrote_note": "添加备注",
    },
}


def responders_text(metrics: KeyMetrics, language: Language) -> str:
    """Each responder with their roles, in the report's language ("Laura Haley (acknowledged, resolved)");
    reports drafted before roles were recorded list the names alone."""
    if not metrics.people:
        return ", ".join(metrics.responders) if language == Language.EN else "、".join(metrics.responders)
    names = ROLE_NAMES[language]
    if language == Language.ZH:
        return "、".join(f"{r.label}（{'、'.join(names[role] for role in r.roles)}）" for r in metrics.people)
    return ", ".join(f"{r.label} ({', '.join(names[role] for role in r.roles)})" for r in metrics.people)


def _cell(value: object) -> str:
    """Keep free text inside one Markdown table cell."""
    return re.sub(r"\s*\n\s*", " ", str(value)).replace("|", "\\|")


@pass_context
def _local(context: Context, value: object) -> str:
    return format_local(value, context["pm"].timezone)  # type: ignore[arg-type]


@pass_context
def _word(context: Context, value: object) -> str:
    return enum_word(value, context["pm"].language)


@pass_context
def _duration(context: Context, value: object) -> str:
    return format_duration(value, context["pm"].language)  # type: ignore[arg-type]


# A line the draft writes into the Timeline when a source could not be read ("- ⚠ PagerDuty could not be
# read …"): for the team while drafting, not for the readers of the published report.
GATHER_NOTE = re.compile(r"^- \u26a0 .*(?:\n|$)", re.MULTILINE)


def body_for_readers(body: str, key: str) -> str:
    """A section's text as the published report shows it: the draft's notes about unreadable sources out."""
    return GATHER_NOTE.sub("", body).strip("\n") if key == "timeline" else body


@cache
def _report_template() -> Template:
    env = Environment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
    env.filters["local"] = _local
    env.filters["duration"] = _duration
    env.filters["word"] = _word
    env.filters["cell"] = _cell
    env.filters["for_readers"] = body_for_readers
    source = resources.files("postmortem.report.templates").joinpath("report.md.j2").read_text(encoding="utf-8")
    return env.from_string(source)


def render_markdown(pm: Postmortem, meeting: Meeting | None = None, *, for_readers: bool = False) -> str:
    """The report as Markdown. `for_readers` (the exports): the summary first, and the team's working
    blocks left out (the review meeting's logistics, similar past reports, notes about unreadable sources)."""
    text = _report_template().render(
        for_readers=for_readers,
        pm=pm,
        m=pm.metrics,
        L=LABELS[pm.language],
        responders=responders_text(pm.metrics, pm.language),
        show_prompts=pm.status == Status.DRAFT,
        meeting=meeting,
        agenda=agenda_text(in_language(meeting.agenda, pm.language), pm.language) if meeting else "",
    )
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
