"""The model's narrative, held to the evidence: what it is asked, and which of its sentences are kept.

Pure (no I/O): `activities/narrative.py` calls the model and stores the result. The model sees the
report's own timeline, each entry with an id (`E1`, `E2` … in time order), its key metrics and the
section's instructions from the template, and must end every sentence with the ids it rests on
(`[E3]`, `[E3, E7]`). `cited` keeps a sentence only when it cites at least one id and every id it
cites is one we gave; the rest is dropped, so nothing in the section stands without evidence.
The kept text is followed by its sources (each cited entry with its time), so a reader can check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from postmortem.evidence.distil import distil, merge
from postmortem.evidence.models import EntryKind, TimelineEntry
from postmortem.models import KeyMetrics, Language
from postmortem.report.formatting import KIND_LABELS, format_duration, format_local

# The model sees at most this many entries (`chosen`): a prompt stays small and every id still means
# one entry of the report's own timeline.
MAX_ENTRIES = 120
DRAFTED_BY_PREFIX = "model"

_CITATION = re.compile(r"\[\s*(E\d+(?:\s*[,;，、]\s*E\d+)*)\s*\]")
_ID = re.compile(r"E\d+")
# A sentence ends at . ! ? (followed by space or the end) or at a CJK full stop, then its citations.
_SENTENCE = re.compile(
    r"[^.!?。！？]*?(?:[.!?](?=\s|$|\[)|[。！？]|$)(?:\s*\[\s*E\d+(?:\s*[,;，、]\s*E\d+)*\s*\])*",
)
_BULLET = re.compile(r"^(\s*(?:[-*]|\d+\.)\s+)")

_WORDS = {
    Language.EN: {
        "write_in": "Write in English.",
        "sources": "Sources",
        "metrics": "Key metrics",
        "timeline": "Timeline (id, time, event)",
        "severity": "Highest severity",
        "services": "Services",
        "started": "Triggered",
        "impact": "Impact started",
        "detected": "Detected",
        "acknowledged": "Acknowledged",
        "resolved": "Resolved",
        "duration": "Total impact duration",
        "ttd": "Time to detect",
        "tta": "Time to acknowledge",
        "ttr": "Time to resolve",
        "responders": "Responders",
        "unknown": "unknown",
    },
    Language.ZH: {
        "write_in": "请用简体中文撰写。",
        "sources": "依据",
        "metrics": "关键指标",
        "timeline": "时间线（编号、时间、事件）",
        "severity": "最高严重级别",
        "services": "服务",
        "started": "触发时间",
        "impact": "影响开始",
        "detected": "发现时间",
        "acknowledged": "确认时间",
        "resolved": "解决时间",
        "duration": "总影响时长",
        "ttd": "发现耗时",
        "tta": "确认耗时",
        "ttr": "解决耗时",
        "responders": "响应人员",
        "unknown": "未知",
    },
}

SYSTEM_PROMPT = (
    "You write one section of a blameless incident post-mortem from the evidence you are given, and "
    "nothing else: no facts, numbers, causes or names that the timeline or the key metrics do not show. "
    "Every sentence must end with the ids of the timeline entries it rests on, in square brackets, "
    "like [E3] or [E3, E7]. A sentence you cannot tie to an entry must be left out. Write plain "
    "sentences or '- ' bullets, no headings, no preamble. Describe systems and decisions, never blame people."
)


def drafted_by(model: str | None) -> str:
    """The mark a model-written section carries until a person edits it."""
    return f"{DRAFTED_BY_PREFIX} {model}" if model else DRAFTED_BY_PREFIX


@dataclass(frozen=True)
class Evidence:
    """The timeline as the model sees it: ids → entries, and the prompt's text of it."""

    entries: dict[str, TimelineEntry]
    text: str


def chosen(entries: Sequence[TimelineEntry], limit: int = MAX_ENTRIES) -> list[TimelineEntry]:
    """All the entries (duplicates merged) when they fit; else the key events (`distil`) and then the
    earliest of the rest, chat messages last (a 10,000-line incident is mostly chatter)."""
    merged = merge(list(entries))
    if len(merged) <= limit:
        return merged
    key = {e.key: e for e in distil(merged, limit=limit)}
    rest = sorted((e for e in merged if e.key not in key), key=lambda e: (e.kind == EntryKind.MESSAGE, e.at, e.key))
    return list(key.values()) + rest[: limit - len(key)]


def evidence(
    entries: Sequence[TimelineEntry], *, zone: str, language: Language, clean: Callable[[str], str]
) -> Evidence:
    """Ids for the report's timeline entries (`chosen`) in time order; `clean` is applied to every text sent."""
    ordered = sorted(chosen(entries), key=lambda e: (e.at, e.key))
    ids = {f"E{index}": entry for index, entry in enumerate(ordered, start=1)}
    labels = KIND_LABELS[language]
    lines = []
    for entry_id, entry in ids.items():
        actor = f" — {clean(entry.actor)}" if entry.actor else ""
        kind = labels.get(entry.kind.value, entry.kind.value)
        lines.append(f"[{entry_id}] {format_local(entry.at, zone)} · {kind}: {clean(entry.text)}{actor}")
    return Evidence(ids, "\n".join(lines))


def metrics_text(metrics: KeyMetrics, *, zone: str, language: Language, clean: Callable[[str], str]) -> str:
    w = _WORDS[language]
    unknown = w["unknown"]

    def at(value: object) -> str:
        return format_local(value, zone) or unknown  # type: ignore[arg-type]

    def took(value: int | None) -> str:
        return format_duration(value, language) or unknown

    rows = [
        (w["severity"], str(metrics.highest_severity or unknown)),
        (w["services"], clean(", ".join(metrics.services)) or unknown),
        (w["impact"], at(metrics.impact_started_at)),
        (w["started"], at(metrics.started_at)),
        (w["detected"], at(metrics.detected_at)),
        (w["acknowledged"], at(metrics.acknowledged_at)),
        (w["resolved"], at(metrics.closed_at)),
        (w["duration"], took(metrics.duration_seconds)),
        (w["ttd"], took(metrics.time_to_detect_seconds)),
        (w["tta"], took(metrics.time_to_acknowledge_seconds)),
        (w["ttr"], took(metrics.time_to_resolve_seconds)),
        (w["responders"], clean(", ".join(metrics.responders)) or unknown),
    ]
    return "\n".join(f"- {name}: {value}" for name, value in rows)


def messages(
    *,
    title: str,
    section_title: str,
    instructions: str,
    language: Language,
    metrics: str,
    timeline: Evidence,
) -> list[dict[str, str]]:
    """The Chat Completions messages for one section."""
    w = _WORDS[language]
    user = (
        f"Incident: {title}\n\n"
        f"{w['metrics']}:\n{metrics}\n\n"
        f"{w['timeline']}:\n{timeline.text}\n\n"
        f'Section: "{section_title}"\n'
        f"Instructions: {instructions}\n\n"
        f"{w['write_in']} Cite entry ids in square brackets at the end of every sentence."
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class Cited:
    text: str  # the kept sentences, lines and bullets as the model wrote them
    kept: int
    dropped: int
    ids: list[str]  # every id the kept sentences cite, in order of first use


def citations(sentence: str) -> list[str]:
    return [found for group in _CITATION.findall(sentence) for found in _ID.findall(group)]


def cited(reply: str, known: Collection[str]) -> Cited:
    """The sentences of `reply` that cite only entries in `known` (and at least one)."""
    known_ids = set(known)
    kept = dropped = 0
    used: list[str] = []
    lines: list[str] = []
    for raw in reply.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            if lines and lines[-1] != "":
                lines.append("")
            continue
        if line.lstrip().startswith("#"):
            continue  # headings are the template's, not the model's
        bullet = _BULLET.match(line)
        prefix = bullet.group(1) if bullet else ""
        body = line[len(prefix) :]
        keep: list[str] = []
        for match in _SENTENCE.finditer(body):
            sentence = match.group().strip()
            if not sentence:
                continue
            ids = citations(sentence)
            if ids and all(found in known_ids for found in ids):
                keep.append(sentence)
                used += [found for found in ids if found not in used]
                kept += 1
            elif _ID.search(sentence) or re.search(r"\w", sentence):
                dropped += 1
        if keep:
            joined = keep[0]
            for sentence in keep[1:]:  # Chinese sentences follow each other without a space
                joined += ("" if re.search(r"[。！？]\s*(?:\[[^\]]*\]\s*)*$", joined) else " ") + sentence
            lines.append(prefix + joined)
    while lines and lines[-1] == "":
        lines.pop()
    return Cited("\n".join(lines), kept, dropped, used)


def section_body(kept: Cited, timeline: Evidence, *, zone: str, language: Language, clean: Callable[[str], str]) -> str:
    """The kept text and, below it, the entries it cites (id, time, event) so each claim can be checked."""
    labels = KIND_LABELS[language]
    sources = []
    for entry_id in sorted(kept.ids, key=lambda found: int(found[1:])):
        entry = timeline.entries[entry_id]
        kind = labels.get(entry.kind.value, entry.kind.value)
        link = f" ([evidence]({entry.evidence_url}))" if entry.evidence_url else ""
        sources.append(f"- [{entry_id}] {format_local(entry.at, zone)} · {kind}: {clean(entry.text)}{link}")
    return f"{kept.text}\n\n{_WORDS[language]['sources']}:\n\n" + "\n".join(sources)
