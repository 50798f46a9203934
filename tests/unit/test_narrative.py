"""The model's text is held to the evidence: only sentences citing entries we gave are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postmortem.evidence.models import EntryKind, EvidenceSource, TimelineEntry
from postmortem.models import KeyMetrics, Language
from postmortem.report import narrative

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _entries() -> list[TimelineEntry]:
    kinds = [EntryKind.TRIGGERED, EntryKind.ACKNOWLEDGED, EntryKind.RESOLVED]
    return [
        TimelineEntry(
            key=f"k{i}",
            at=T0 + timedelta(minutes=10 * i),
            kind=kind,
            source=EvidenceSource.PAGERDUTY,
            text=f"event {i} on db-1.prod.acme.net",
            actor="Laura Haley" if kind == EntryKind.ACKNOWLEDGED else None,
            evidence_url=f"https://acme.pagerduty.com/incidents/P1/log_entries/{i}",
        )
        for i, kind in enumerate(kinds)
    ]


def test_entries_get_ids_in_time_order_and_the_text_sent_is_cleaned() -> None:
    shuffled = list(reversed(_entries()))
    given = narrative.evidence(shuffled, zone="UTC", language=Language.EN, clean=lambda t: t.replace("Laura", "X"))
    assert list(given.entries) == ["E1", "E2", "E3"]
    assert given.entries["E1"].key == "k0"
    assert "[E2] 2026-03-02 09:10 UTC · Acknowledged: event 1 on db-1.prod.acme.net — X Haley" in given.text


def test_only_sentences_citing_known_entries_are_kept() -> None:
    reply = (
        "The API failed at 09:00 [E1]. It was acknowledged ten minutes later [E2, E3].\n"
        "A batch job overloaded the database [E999]. Everyone worked hard.\n"
        "\n"
        "- Paging worked [E2].\n"
        "- Nobody knows why.\n"
        "## A heading the model should not write\n"
    )
    kept = narrative.cited(reply, {"E1", "E2", "E3"})
    assert kept.text == (
        "The API failed at 09:00 [E1]. It was acknowledged ten minutes later [E2, E3].\n\n- Paging worked [E2]."
    )
    assert (kept.kept, kept.dropped) == (3, 3)
    assert kept.ids == ["E1", "E2", "E3"]


def test_a_sentence_citing_one_real_and_one_invented_entry_is_dropped() -> None:
    kept = narrative.cited("Both happened [E1][E42]. Then this [E2].", {"E1", "E2"})
    assert kept.text == "Then this [E2]."
    assert kept.dropped == 1


def test_chinese_sentences_end_at_the_full_stop_with_their_citations() -> None:
    reply = "支付服务在 09:00 开始报错 [E1]。值班人员随后确认 [E2]。数据库被批处理任务压垮 [E9]。大家都很努力。"
    kept = narrative.cited(reply, {"E1", "E2"})
    assert kept.text == "支付服务在 09:00 开始报错 [E1]。值班人员随后确认 [E2]。"
    assert kept.dropped == 2


def test_the_section_lists_the_entries_it_cites() -> None:
    given = narrative.evidence(_entries(), zone="Europe/Berlin", language=Language.EN, clean=lambda t: t)
    kept = narrative.cited("Resolved [E3]. Triggered [E1].", given.entries)
    body = narrative.section_body(kept, given, zone="Europe/Berlin", language=Language.EN, clean=lambda t: t)
    assert body.splitlines()[-3:] == [
        "",
        "- [E1] 2026-03-02 10:00 CET (09:00 UTC) · Triggered: event 0 on db-1.prod.acme.net"
        " ([evidence](https://acme.pagerduty.com/incidents/P1/log_entries/0))",
        "- [E3] 2026-03-02 10:20 CET (09:20 UTC) · Resolved: event 2 on db-1.prod.acme.net"
        " ([evidence](https://acme.pagerduty.com/incidents/P1/log_entries/2))",
    ]


def test_the_prompt_carries_instructions_metrics_timeline_and_the_language() -> None:
    given = narrative.evidence(_entries(), zone="UTC", language=Language.ZH, clean=lambda t: t)
    metrics = narrative.metrics_text(
        KeyMetrics(services=["payments"], time_to_resolve_seconds=1200), zone="UTC", language=Language.ZH, clean=str
    )
    messages = narrative.messages(
        title="Payments down", section_title="摘要", instructions="两三句话", language=Language.ZH,
        metrics=metrics, timeline=given,
    )  # fmt: skip
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "两三句话" in user and "请用简体中文撰写。" in user and "- 服务: payments" in user
    assert "[E3]" in user and "[E4]" not in user


def test_a_long_timeline_keeps_its_key_events_and_the_rest_of_the_room_for_what_is_not_chatter() -> None:
    base = _entries()
    chatter = [
        TimelineEntry(
            key=f"m{i}", at=T0 + timedelta(seconds=i), kind=EntryKind.MESSAGE, source=EvidenceSource.SLACK, text="…"
        )
        for i in range(500)
    ]
    notes = [
        TimelineEntry(
            key=f"n{i}", at=T0 + timedelta(minutes=30 + i), kind=EntryKind.NOTE, source=EvidenceSource.PAGERDUTY,
            text=f"note {i}",
        )
        for i in range(10)
    ]  # fmt: skip
    picked = narrative.chosen(chatter + notes + base, limit=20)
    keys = {e.key for e in picked}
    assert len(picked) == 20 and {"k0", "k1", "k2"} <= keys and {f"n{i}" for i in range(10)} <= keys
    assert len(narrative.chosen(base)) == 3
