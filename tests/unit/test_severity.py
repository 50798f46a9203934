"""Every source's label onto one SEV1–SEV4 scale."""

from __future__ import annotations

import pytest

from postmortem.incident.severity import opsgenie_severity, pagerduty_severity, severity_from_label
from postmortem.models import Severity

S1, S2, S3, S4 = Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4


@pytest.mark.parametrize(
    "label, expected",
    [
        ("P1", S1),
        ("p2", S2),
        ("P3", S3),
        ("P4", S4),
        ("P5", S4),
        ("SEV1", S1),
        ("sev2", S2),
        ("SEV-3", S3),
        ("Sev 4", S4),
        ("sev_1", S1),
        ("S2", S2),
        ("severity 3", S3),
        ("Priority-1", S1),
        ("1", S1),
        (" 2 ", S2),
        ("5", S4),
        (1, S1),
        (2, S2),
        (3, S3),
        (4, S4),
        (5, S4),
        ("critical", S1),
        ("Blocker", S1),
        ("HIGHEST", S1),
        ("major", S2),
        ("High", S2),
        ("error", S2),
        ("moderate", S3),
        ("medium", S3),
        ("warning", S3),
        ("minor", S4),
        ("low", S4),
        ("lowest", S4),
        ("info", S4),
        ("  Critical  ", S1),
    ],
)
def test_severity_from_label(label, expected):
    assert severity_from_label(label) == expected


@pytest.mark.parametrize(
    "label",
    [None, True, False, "", "   ", "P0", "P6", "P10", "0", 0, 6, -1, "urgent-ish", "SEV", "P", "1a"],
)
def test_severity_from_label_means_nothing(label):
    assert severity_from_label(label) is None


@pytest.mark.parametrize(
    "priority, urgency, expected",
    [
        ("P1", "low", S1),  # the priority wins
        ("P3", "high", S3),
        ("P5", None, S4),
        ("SEV2", "low", S2),
        (None, "high", S2),
        (None, "HIGH", S2),
        (None, "low", S4),
        (None, None, S3),
        (None, "", S3),
        ("Custom priority name", "high", S2),  # a priority that means nothing falls back to urgency
        ("Custom priority name", "low", S4),
    ],
)
def test_pagerduty_severity(priority, urgency, expected):
    assert pagerduty_severity(priority, urgency) == expected


@pytest.mark.parametrize(
    "priority, expected",
    [
        ("P1", S1),
        ("P2", S2),
        ("P3", S3),
        ("P4", S4),
        ("P5", S4),
        (1, S1),
        (3, S3),
        (5, S4),
        ("2", S2),
        (None, S3),
        ("bogus", S3),
    ],
)
def test_opsgenie_severity(priority, expected):
    assert opsgenie_severity(priority) == expected
