"""Map each source's urgency, priority or severity label onto one SEV1–SEV4 scale."""

from __future__ import annotations

import re

from postmortem.models import Severity

_BY_NUMBER = {1: Severity.SEV1, 2: Severity.SEV2, 3: Severity.SEV3, 4: Severity.SEV4, 5: Severity.SEV4}
_BY_WORD = {
    "critical": Severity.SEV1,
    "blocker": Severity.SEV1,
    "highest": Severity.SEV1,
    "major": Severity.SEV2,
    "high": Severity.SEV2,
    "error": Severity.SEV2,
    "moderate": Severity.SEV3,
    "medium": Severity.SEV3,
    "warning": Severity.SEV3,
    "minor": Severity.SEV4,
    "low": Severity.SEV4,
    "lowest": Severity.SEV4,
    "info": Severity.SEV4,
}
_NUMBERED = re.compile(r"^\s*(?:p|sev|s|severity|priority)?[\s\-_]*([0-9])\s*$", re.IGNORECASE)


def severity_from_label(label: str | int | None) -> Severity | None:
    """`P1`, `SEV-2`, `sev3`, `3`, `critical`, … → Severity; None when the label means nothing."""
    if label is None or isinstance(label, bool):
        return None
    if isinstance(label, int):
        return _BY_NUMBER.get(label)
    text = label.strip()
    match = _NUMBERED.match(text)
    if match:
        return _BY_NUMBER.get(int(match.group(1)))
    return _BY_WORD.get(text.lower())


def pagerduty_severity(priority: str | None, urgency: str | None) -> Severity:
    """A priority (P1–P5) wins; without one, high urgency is a SEV2 and low urgency a SEV4."""
    by_priority = severity_from_label(priority)
    if by_priority:
        return by_priority
    return Severity.SEV2 if (urgency or "").lower() == "high" else Severity.SEV4 if urgency else Severity.SEV3


def opsgenie_severity(priority: str | int | None) -> Severity:
    """Opsgenie sends P1–P5 (or 1–5); its default priority is P3."""
    return severity_from_label(priority) or Severity.SEV3
