"""Drafting a report (title, sections, timeline), rendering it as Markdown, and formatting times."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from postmortem.models import (
    ActionItem,
    ActionItemStatus,
    Incident,
    Language,
    Link,
    Person,
    PolicyDecision,
    PolicyOutcome,
    Postmortem,
    Priority,
    Ref,
    Severity,
    Source,
    Status,
    TemplateVariant,
)
from postmortem.report.drafting import draft_report, merge_redraft
from postmortem.report.formatting import format_duration, format_local
from postmortem.report.rendering import enum_word, render_markdown

UTC = UTC
EN, ZH = Language.EN, Language.ZH
FULL, LIGHT = TemplateVariant.FULL, TemplateVariant.LIGHTWEIGHT
NOW = datetime(2024, 3, 10, 2, 0, tzinfo=UTC)
FULL_DECISION = PolicyDecision(outcome=PolicyOutcome.FULL, reasons=["SEV2"])
LIGHT_DECISION = PolicyDecision(outcome=PolicyOutcome.LIGHTWEIGHT, reasons=["nothing matched"])

SECTIONS = {
    (EN, FULL): [
        ("summary", "Summary"),
        ("timeline", "Timeline"),
        ("root_cause", "Root cause and contributing factors"),
        ("impact", "Impact"),
        ("detection_response", "Detection and response"),
        ("resolution", "Resolution"),
        ("action_items", "Action items"),
        ("lessons_learned", "Lessons learned"),
    ],
    (EN, LIGHT): [
        ("summary", "Summary"),
        ("timeline", "Timeline"),
        ("root_cause", "Root cause and contributing factors"),
        ("resolution", "Resolution"),
        ("action_items", "Action items"),
        ("lessons_learned", "Lessons learned"),
    ],
    (ZH, FULL): [
        ("summary", "摘要"),
        ("timeline", "时间线"),
        ("root_cause", "根本原因与促成因素"),
        ("impact", "影响"),
        ("detection_response", "检测与响应"),
        ("resolution", "解决方案"),
        ("action_items", "行动项"),
        ("lessons_learned", "经验教训"),
    ],
    (ZH, LIGHT): [
        ("summary", "摘要"),
        ("timeline", "时间线"),
        ("root_cause", "根本原因与促成因素"),
        ("resolution", "解决方案"),
        ("action_items", "行动项"),
        ("lessons_learned", "经验教训"),
    ],
}


def incident(**changes) -> Incident:
    fields = dict(
        source=Source.PAGERDUTY,
        id="PABC123",
        number="42",
        title="Checkout API latency",
        services=[Ref(id="PF9KMXH", name="API Service")],
        severity=Severity.SEV2,
        urgency="high",
        created_at=datetime(2024, 3, 9, 23, 30, tzinfo=UTC),
        acknowledged_at=datetime(2024, 3, 9, 23, 40, tzinfo=UTC),
        resolved_at=datetime(2024, 3, 10, 1, 0, tzinfo=UTC),
        responders=[Person(name="Alice")],
        resolved_by=Person(name="Alice"),
        links=[Link(title="PagerDuty incident", url="https://acme.pagerduty.com/incidents/PABC123")],
    )
    fields.update(changes)
    return Incident(**fields)


def draft(language=EN, variant=FULL, zone="Asia/Shanghai", incidents=None, decision=FULL_DECISION):
    return draft_report(
        incidents or [incident()], decision=decision, language=language, variant=variant, zone=zone, now=NOW
    )


def body(d, key: str) -> str:
    return next(section.body for section in d.sections if section.key == key)


def postmortem(d, *, status=Status.DRAFT, zone="Asia/Shanghai", action_items=(), incidents=None) -> Postmortem:
    return Postmortem(
        id="pm-1",
        title=d.title,
        status=status,
        team="payments",
        services=d.metrics.services,
        language=d.language,
        variant=d.variant,
        timezone=zone,
        severity=d.metrics.highest_severity,
        sections=d.sections,
        metrics=d.metrics,
        incidents=incidents or [incident()],
        action_items=list(action_items),
        workflow_id="postmortem-pm-1",
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


# --- draft_report() --------------------------------------------------------------------------


@pytest.mark.parametrize("language, variant", list(SECTIONS))
def test_sections_follow_the_template(language, variant):
    d = draft(language, variant)
    assert d.language == language and d.variant == variant
    assert [(s.key, s.title) for s in d.sections] == SECTIONS[(language, variant)]
    assert all(s.prompt for s in d.sections)
    assert not any(s.edited for s in d.sections)


@pytest.mark.parametrize("language", [EN, ZH])
def test_title_is_the_local_start_date_and_incident_title(language):
    # 2024-03-09 23:30 UTC is already 2024-03-10 in Shanghai.
    assert draft(language, zone="Asia/Shanghai").title == "2024-03-10 Checkout API latency"
    assert draft(language, zone="UTC").title == "2024-03-09 Checkout API latency"
    assert draft(language, zone="America/Los_Angeles").title == "2024-03-09 Checkout API latency"


def test_title_uses_the_earliest_start_of_several_incidents():
    later = incident(
        id="PLATER",
        title="Second",
        created_at=datetime(2024, 3, 11, 8, 0, tzinfo=UTC),
        resolved_at=datetime(2024, 3, 11, 9, 0, tzinfo=UTC),
    )
    earlier = incident(id="PEARLY", title="Ignored title", created_at=datetime(2024, 3, 8, 8, 0, tzinfo=UTC))
    assert draft(incidents=[later, earlier], zone="UTC").title == "2024-03-08 Second"


def test_title_falls_back_to_resolution_then_now():
    only_resolved = incident(created_at=None, acknowledged_at=None, resolved_at=datetime(2024, 5, 1, 17, 0, tzinfo=UTC))
    assert draft(incidents=[only_resolved], zone="Asia/Tokyo").title == "2024-05-02 Checkout API latency"
    no_times = incident(created_at=None, acknowledged_at=None, resolved_at=None)
    assert draft(incidents=[no_times], zone="UTC").title == "2024-03-10 Checkout API latency"


def test_very_long_title_is_cut_to_256_characters():
    d = draft(incidents=[incident(title="x" * 1000)])
    assert len(d.title) == 256
    assert d.title.startswith("2024-03-10 xxx")


@pytest.mark.parametrize(
    "variant, decision, expected",
    [
        (TemplateVariant.AUTO, FULL_DECISION, FULL),
        (TemplateVariant.AUTO, LIGHT_DECISION, LIGHT),
        (FULL, LIGHT_DECISION, FULL),
        (LIGHT, FULL_DECISION, LIGHT),
    ],
)
def test_variant_auto_follows_the_decision(variant, decision, expected):
    d = draft(variant=variant, decision=decision)
    assert d.variant == expected
    assert [s.key for s in d.sections] == [key for key, _ in SECTIONS[(EN, expected)]]


def test_no_incidents_is_an_error():
    with pytest.raises(ValueError):
        draft_report([], decision=FULL_DECISION, language=EN, variant=FULL, zone="UTC", now=NOW)


@pytest.mark.parametrize("variant", [FULL, LIGHT])
def test_english_timeline_shows_local_time_with_utc_alongside(variant):
    timeline = body(draft(EN, variant), "timeline").splitlines()
    assert timeline == [
        "- **2024-03-10 07:30 CST (2024-03-09 23:30 UTC)** — Triggered: pagerduty #42 Checkout API latency ([evidence](https://acme.pagerduty.com/incidents/PABC123))",
        "- **2024-03-10 07:40 CST (2024-03-09 23:40 UTC)** — Acknowledged: pagerduty #42 Checkout API latency ([evidence](https://acme.pagerduty.com/incidents/PABC123))",
        "- **2024-03-10 09:00 CST (01:00 UTC)** — Resolved: pagerduty #42 Checkout API latency — Alice ([evidence](https://acme.pagerduty.com/incidents/PABC123))",
    ]


@pytest.mark.parametrize("variant", [FULL, LIGHT])
def test_chinese_timeline_shows_local_time_with_utc_alongside(variant):
    timeline = body(draft(ZH, variant), "timeline").splitlines()
    assert timeline == [
        "- **2024-03-10 07:30 CST (2024-03-09 23:30 UTC)** — 事故触发：pagerduty #42 Checkout API latency（[证据](https://acme.pagerduty.com/incidents/PABC123)）",
        "- **2024-03-10 07:40 CST (2024-03-09 23:40 UTC)** — 已确认：pagerduty #42 Checkout API latency（[证据](https://acme.pagerduty.com/incidents/PABC123)）",
        "- **2024-03-10 09:00 CST (01:00 UTC)** — 已解决：pagerduty #42 Checkout API latency — Alice（[证据](https://acme.pagerduty.com/incidents/PABC123)）",
    ]


def test_timeline_across_a_dst_change_in_both_languages():
    dst = incident(
        created_at=datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
        acknowledged_at=None,
        resolved_at=datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
    )
    for language in (EN, ZH):
        d = draft(language, zone="Europe/Berlin", incidents=[dst])
        assert d.title == "2024-03-31 Checkout API latency"
        timeline = body(d, "timeline")
        assert "**2024-03-31 01:30 CET (00:30 UTC)**" in timeline
        assert "**2024-03-31 03:30 CEST (01:30 UTC)**" in timeline
        assert d.metrics.duration_seconds == 3600  # one real hour, although the wall clock moved two
    assert "for 1 h (SEV2" in body(draft(EN, zone="Europe/Berlin", incidents=[dst]), "summary")
    assert "持续 1 小时（SEV2" in body(draft(ZH, zone="Europe/Berlin", incidents=[dst]), "summary")


def test_timeline_without_timestamps_asks_for_them():
    no_times = incident(created_at=None, acknowledged_at=None, resolved_at=None)
    assert "No timestamps" in body(draft(EN, incidents=[no_times]), "timeline")
    assert "没有时间戳" in body(draft(ZH, incidents=[no_times]), "timeline")


def test_summary_and_metrics_sections_in_english():
    d = draft(EN, FULL)
    assert body(d, "summary").splitlines() == [
        "Checkout API latency affected API Service for 1 h 30 min (SEV2, high urgency).",
        "It started at 2024-03-10 07:30 CST (2024-03-09 23:30 UTC) and was resolved at 2024-03-10 09:00 CST (01:00 UTC).",
    ]
    assert "- Time to acknowledge: 10 min" in body(d, "detection_response")
    assert "- Responders: Alice" in body(d, "detection_response")
    assert body(d, "resolution") == "Resolved at 2024-03-10 09:00 CST (01:00 UTC) by Alice."
    assert body(d, "root_cause") == ""


def test_summary_in_chinese():
    d = draft(ZH, FULL)
    assert (
        body(d, "summary").splitlines()[0]
        == "Checkout API latency 影响了 API Service，持续 1 小时 30 分钟（SEV2，紧急程度 高）。"
    )
    assert "- 确认耗时：10 分钟" in body(d, "detection_response")


# --- render_markdown() -----------------------------------------------------------------------


def action_item(**changes) -> ActionItem:
    fields = dict(
        id="ai-1",
        description="Split the a|b pool\nand add a retry",
        owner="bob|ops",
        due_date=date(2024, 3, 20),
        priority=Priority.HIGH,
        status=ActionItemStatus.OPEN,
        created_at=NOW,
        updated_at=NOW,
    )
    fields.update(changes)
    return ActionItem(**fields)


def test_markdown_in_english():
    d = draft(EN, FULL)
    md = render_markdown(postmortem(d))
    lines = md.splitlines()
    assert lines[0] == "# 2024-03-10 Checkout API latency"
    for row in [
        "| Metric | Value |",
        "| Highest severity | SEV2 |",
        "| Impact started | 2024-03-10 07:30 CST (2024-03-09 23:30 UTC) |",
        "| Triggered | 2024-03-10 07:30 CST (2024-03-09 23:30 UTC) |",
        "| Time to detect | — |",
        "| Resolved | 2024-03-10 09:00 CST (01:00 UTC) |",
        "| Total impact duration | 1 h 30 min |",
        "| Time to acknowledge | 10 min |",
        "| Time to resolve | 1 h 30 min |",
        "| Responders | Alice (resolved) |",
        "| Services | API Service |",
        "| Incidents | [pagerduty #42](https://acme.pagerduty.com/incidents/PABC123) |",
    ]:
        assert row in lines
    assert "## Key metrics" in lines
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == ["## Key metrics"] + [f"## {title}" for _, title in SECTIONS[(EN, FULL)]]
    assert (
        "- **2024-03-10 07:30 CST (2024-03-09 23:30 UTC)** — Triggered: pagerduty #42 Checkout API latency ([evidence](https://acme.pagerduty.com/incidents/PABC123))"
        in lines
    )
    assert md.endswith("\n") and not md.endswith("\n\n")


def test_markdown_in_chinese():
    d = draft(ZH, LIGHT)
    lines = render_markdown(postmortem(d)).splitlines()
    assert lines[0] == "# 2024-03-10 Checkout API latency"
    assert "## 关键指标" in lines
    assert "| 指标 | 值 |" in lines
    assert "| 最高严重级别 | SEV2 |" in lines
    assert "| 总影响时长 | 1 小时 30 分钟 |" in lines
    assert [line for line in lines if line.startswith("## ")][1:] == [f"## {t}" for _, t in SECTIONS[(ZH, LIGHT)]]


def test_markdown_without_metrics_shows_dashes():
    no_times = incident(
        created_at=None, acknowledged_at=None, resolved_at=None, responders=[], resolved_by=None, services=[], links=[]
    )
    d = draft(EN, FULL, incidents=[no_times])
    lines = render_markdown(postmortem(d, incidents=[no_times])).splitlines()
    assert "| Triggered | — |" in lines
    assert "| Total impact duration | — |" in lines
    assert "| Responders | — |" in lines
    assert "| Incidents | pagerduty #42 |" in lines


@pytest.mark.parametrize("language", [EN, ZH])
def test_prompts_only_while_draft(language):
    d = draft(language, FULL)
    prompts = [f"> {s.prompt}" for s in d.sections]
    draft_lines = render_markdown(postmortem(d, status=Status.DRAFT)).splitlines()
    assert all(prompt in draft_lines for prompt in prompts)
    for status in (Status.IN_REVIEW, Status.PUBLISHED, Status.ARCHIVED):
        md = render_markdown(postmortem(d, status=status))
        assert not any(line.startswith("> ") for line in md.splitlines())
        assert f"**{enum_word(status, language)}**" in md


def table_cells(row: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_action_items_table_escapes_pipes():
    d = draft(EN, FULL)
    items = [
        action_item(),
        action_item(
            id="ai-2",
            description="Alert on pool saturation",
            owner=None,
            due_date=None,
            priority=Priority.LOW,
            status=ActionItemStatus.COMPLETED,
        ),
    ]
    lines = render_markdown(postmortem(d, status=Status.IN_REVIEW, action_items=items)).splitlines()
    header = "| Action item | Owner | Due | Priority | Status | Ticket |"
    assert lines.count(header) == 1
    start = lines.index(header)
    # The table sits inside the Action items section.
    assert lines.index("## Action items") < start < lines.index("## Lessons learned")
    first, second = lines[start + 2], lines[start + 3]
    assert first == "| Split the a\\|b pool and add a retry | bob\\|ops | 2024-03-20 | HIGH | OPEN | — |"
    assert table_cells(first) == [
        "Split the a\\|b pool and add a retry",
        "bob\\|ops",
        "2024-03-20",
        "HIGH",
        "OPEN",
        "—",
    ]
    assert table_cells(second) == ["Alert on pool saturation", "—", "—", "LOW", "COMPLETED", "—"]


def test_no_action_items_table_without_items():
    md = render_markdown(postmortem(draft(EN, FULL)))
    assert "| Action item |" not in md


# --- merge_redraft() -------------------------------------------------------------------------


def edited(sections, **bodies):
    return [s.model_copy(update={"body": bodies[s.key], "edited": True}) if s.key in bodies else s for s in sections]


def test_merge_redraft_keeps_edited_bodies_when_switching_language():
    current = edited(draft(EN, FULL).sections, summary="Our own summary.", root_cause="A config push.")
    fresh = draft(ZH, FULL).sections
    merged = merge_redraft(current, fresh)
    assert [(s.key, s.title) for s in merged] == SECTIONS[(ZH, FULL)]
    by_key = {s.key: s for s in merged}
    assert by_key["summary"].body == "Our own summary." and by_key["summary"].edited
    assert by_key["root_cause"].body == "A config push." and by_key["root_cause"].edited
    assert by_key["timeline"].body == body(draft(ZH, FULL), "timeline")  # not edited: the new language
    assert "触发" in by_key["timeline"].body and not by_key["timeline"].edited


def test_merge_redraft_keeps_edited_sections_the_new_template_lacks():
    current = edited(draft(EN, FULL).sections, impact="Two regions down.", summary="Ours.")
    merged = merge_redraft(current, draft(ZH, LIGHT).sections)
    assert [s.key for s in merged] == [key for key, _ in SECTIONS[(ZH, LIGHT)]] + ["impact"]
    assert merged[-1].body == "Two regions down." and merged[-1].edited
    assert merged[0].title == "摘要" and merged[0].body == "Ours."


def test_merge_redraft_without_edits_is_the_fresh_draft():
    fresh = draft(ZH, FULL).sections
    assert merge_redraft(draft(EN, FULL).sections, fresh) == fresh


# --- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, language, expected",
    [
        (None, EN, ""),
        (0, EN, "0 s"),
        (59, EN, "59 s"),
        (59.9, EN, "59 s"),
        (60, EN, "1 min"),
        (61, EN, "1 min 1 s"),
        (3600, EN, "1 h"),
        (3661, EN, "1 h 1 min"),
        (5400, EN, "1 h 30 min"),
        (86_400, EN, "1 d"),
        (90_061, EN, "1 d 1 h 1 min"),
        (2 * 86_400 + 5, EN, "2 d"),
        (None, ZH, ""),
        (0, ZH, "0 秒"),
        (45, ZH, "45 秒"),
        (61, ZH, "1 分钟 1 秒"),
        (3600, ZH, "1 小时"),
        (5400, ZH, "1 小时 30 分钟"),
        (90_061, ZH, "1 天 1 小时 1 分钟"),
    ],
)
def test_format_duration(seconds, language, expected):
    assert format_duration(seconds, language) == expected


def test_format_duration_defaults_to_english():
    assert format_duration(90) == "1 min 30 s"


@pytest.mark.parametrize(
    "moment, zone, expected",
    [
        # Europe/Berlin springs forward at 01:00 UTC on 2024-03-31 (02:00 CET → 03:00 CEST).
        (datetime(2024, 3, 31, 0, 30, tzinfo=UTC), "Europe/Berlin", "2024-03-31 01:30 CET (00:30 UTC)"),
        (datetime(2024, 3, 31, 0, 59, tzinfo=UTC), "Europe/Berlin", "2024-03-31 01:59 CET (00:59 UTC)"),
        (datetime(2024, 3, 31, 1, 0, tzinfo=UTC), "Europe/Berlin", "2024-03-31 03:00 CEST (01:00 UTC)"),
        (datetime(2024, 3, 31, 1, 30, tzinfo=UTC), "Europe/Berlin", "2024-03-31 03:30 CEST (01:30 UTC)"),
        # ... and falls back on 2024-10-27: 02:30 happens twice.
        (datetime(2024, 10, 27, 0, 30, tzinfo=UTC), "Europe/Berlin", "2024-10-27 02:30 CEST (00:30 UTC)"),
        (datetime(2024, 10, 27, 1, 30, tzinfo=UTC), "Europe/Berlin", "2024-10-27 02:30 CET (01:30 UTC)"),
        # Another date in the zone than in UTC: UTC shows its own date.
        (datetime(2024, 3, 9, 23, 30, tzinfo=UTC), "Asia/Shanghai", "2024-03-10 07:30 CST (2024-03-09 23:30 UTC)"),
        (datetime(2024, 3, 10, 7, 30, tzinfo=UTC), "America/New_York", "2024-03-10 03:30 EDT (07:30 UTC)"),
        (datetime(2024, 3, 10, 6, 30, tzinfo=UTC), "America/New_York", "2024-03-10 01:30 EST (06:30 UTC)"),
        (datetime(2024, 3, 9, 23, 30, tzinfo=UTC), "UTC", "2024-03-09 23:30 UTC"),
    ],
)
def test_format_local(moment, zone, expected):
    assert format_local(moment, zone) == expected


def test_format_local_converts_offsets_and_reads_naive_as_utc():
    shanghai_offset = timezone(timedelta(hours=8))
    assert format_local(datetime(2024, 3, 10, 7, 30, tzinfo=shanghai_offset), "UTC") == "2024-03-09 23:30 UTC"
    assert format_local(datetime(2024, 3, 31, 1, 30), "Europe/Berlin") == "2024-03-31 03:30 CEST (01:30 UTC)"
    assert format_local(None, "Europe/Berlin") == ""


@pytest.mark.parametrize("language", [EN, ZH])
@pytest.mark.parametrize("variant", [TemplateVariant.STATUS_PAGE, TemplateVariant.REGULATED])
def test_status_page_and_regulated_variants_draft_in_both_languages(language, variant):
    d = draft(language, variant)
    keys = [s.key for s in d.sections]
    if variant == TemplateVariant.REGULATED:
        assert keys[-3:] == ["compliance", "evidence_log", "corrective_actions_audit"]
        assert "Checkout API latency" in body(d, "evidence_log")
    else:
        assert keys == ["summary", "impact", "root_cause", "resolution", "action_items"]
        assert "Checkout API latency" not in body(d, "summary")  # customer-facing: no internal incident titles
    assert all(s.prompt for s in d.sections)
