"""The review meeting's timeboxed agenda: fixed sections, minutes scaled to the meeting's length.

Timeboxes are whole minutes that always add up to the meeting, so the invite never promises more
(or less) time than was booked.
"""

from __future__ import annotations

from fractions import Fraction

from postmortem.meeting.models import AgendaItem
from postmortem.models import Language

MIN_MEETING_MINUTES = 15

# (English title, Chinese title, weight in percent, minimum minutes), in meeting order.
_SECTIONS: tuple[tuple[str, str, int, int], ...] = (
    ("Introduction and blameless reminder", "开场与对事不对人原则提醒", 5, 2),
    ("Incident recap", "事故回顾", 10, 1),
    ("Timeline walkthrough", "时间线梳理", 20, 1),
    ("Root cause discussion", "根本原因讨论", 25, 1),
    ("Response effectiveness", "响应效果评估", 15, 1),
    ("Action items and owners", "行动项与负责人", 20, 1),
    ("Wrap-up", "总结", 5, 2),
)


def build_agenda(minutes: int, language: Language) -> list[AgendaItem]:
    """The seven sections with whole-minute timeboxes that sum exactly to `minutes`."""
    if minutes < MIN_MEETING_MINUTES:
        raise ValueError(f"a review needs at least {MIN_MEETING_MINUTES} minutes for its agenda, got {minutes}")
    weights = [weight for _, _, weight, _ in _SECTIONS]
    minimums = [minimum for _, _, _, minimum in _SECTIONS]
    allocation = _apportion(minutes, weights, minimums)
    return [
        AgendaItem(title=zh if language == Language.ZH else en, minutes=share)
        for (en, zh, _, _), share in zip(_SECTIONS, allocation, strict=True)
    ]


def in_language(agenda: list[AgendaItem], language: Language) -> list[AgendaItem]:
    """The agenda with our own section titles in `language` (a report whose language changed after
    the meeting was planned still reads in one voice); titles we did not write are kept."""
    other = (
        {en: zh for en, zh, _, _ in _SECTIONS} if language == Language.ZH else {zh: en for en, zh, _, _ in _SECTIONS}
    )
    return [item.model_copy(update={"title": other.get(item.title, item.title)}) for item in agenda]


def agenda_text(agenda: list[AgendaItem], language: Language) -> str:
    """A numbered plain-text agenda for invites and chat, one item a line."""
    if language == Language.ZH:
        lines = [f"{n}. {item.title}（{item.minutes} 分钟）" for n, item in enumerate(agenda, start=1)]
    else:
        lines = [f"{n}. {item.title} ({item.minutes} min)" for n, item in enumerate(agenda, start=1)]
    return "\n".join(lines)


def _apportion(total: int, weights: list[int], minimums: list[int]) -> list[int]:
    """Largest-remainder apportionment with per-item floors.

    Items whose proportional share falls below their minimum are pinned at it and the rest is re-shared
    among the others by weight (repeated until stable); the free items then get their floors plus one
    extra minute each, largest remainder first (ties: larger weight, then earlier item). Exact fractions
    keep the rounding deterministic.
    """
    if total < sum(minimums):
        raise ValueError(f"{total} minutes cannot cover the minimum of {sum(minimums)}")
    pinned: dict[int, int] = {}
    while True:
        free = [i for i in range(len(weights)) if i not in pinned]
        budget = total - sum(pinned.values())
        weight_sum = sum(weights[i] for i in free)
        quotas = {i: Fraction(budget * weights[i], weight_sum) for i in free}
        short = [i for i in free if quotas[i] < minimums[i]]
        if not short:
            break
        for i in short:
            pinned[i] = minimums[i]
    shares = {i: int(quota) for i, quota in quotas.items()} | pinned
    leftover = budget - sum(int(q) for q in quotas.values())
    by_remainder = sorted(free, key=lambda i: (-(quotas[i] - int(quotas[i])), -weights[i], i))
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return [shares[i] for i in range(len(weights))]
