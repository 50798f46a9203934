"""Signed links: bound to a report and a person, with an expiry; every way to misuse one is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postmortem.review.signed_links import LinkRefused, Refusal, page_url, sign, signed_url, verify

SECRET = "a-secret-for-tests"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=14)


def test_a_link_opens_its_report_as_its_person() -> None:
    token = sign(SECRET, "pagerduty-P1", "ana@example.com", LATER)
    assert verify(SECRET, token, "pagerduty-P1", NOW) == "ana@example.com"
    assert len(token) < 80, token  # short enough for a calendar description


def test_a_person_with_non_ascii_name() -> None:
    token = sign(SECRET, "pm-1", "李雷@example.com", LATER)
    assert verify(SECRET, token, "pm-1", NOW) == "李雷@example.com"


def test_expired() -> None:
    token = sign(SECRET, "pm-1", "ana@example.com", LATER)
    with pytest.raises(LinkRefused) as refused:
        verify(SECRET, token, "pm-1", LATER)
    assert refused.value.reason == Refusal.EXPIRED
    assert "expired" in str(refused.value)


def test_for_another_report() -> None:
    token = sign(SECRET, "pm-1", "ana@example.com", LATER)
    with pytest.raises(LinkRefused) as refused:
        verify(SECRET, token, "pm-2", NOW)
    assert refused.value.reason == Refusal.OTHER_REPORT


@pytest.mark.parametrize("part", [0, 1, 2, 3])
def test_any_changed_part_is_tampered(part: int) -> None:
    token = sign(SECRET, "pm-1", "ana@example.com", LATER)
    pieces = token.split(".")
    other = sign(SECRET, "pm-9", "admin@example.com", LATER + timedelta(days=400)).split(".")
    pieces[part] = other[part]
    with pytest.raises(LinkRefused) as refused:
        verify(SECRET, ".".join(pieces), "pm-1", NOW)
    assert refused.value.reason == Refusal.TAMPERED


@pytest.mark.parametrize("token", ["", "abc", "a.b.c.d", "!!.??.**.%%", "a.b.c.d.e"])
def test_garbage_is_tampered(token: str) -> None:
    with pytest.raises(LinkRefused) as refused:
        verify(SECRET, token, "pm-1", NOW)
    assert refused.value.reason == Refusal.TAMPERED


def test_another_secret_is_tampered() -> None:
    token = sign("another-secret", "pm-1", "ana@example.com", LATER)
    with pytest.raises(LinkRefused) as refused:
        verify(SECRET, token, "pm-1", NOW)
    assert refused.value.reason == Refusal.TAMPERED


def test_urls() -> None:
    assert page_url("https://pm.example.com/", "pagerduty-P1") == "https://pm.example.com/postmortems/pagerduty-P1"
    url = signed_url("https://pm.example.com", SECRET, "pagerduty-P1", "ana@example.com", LATER)
    base, _, token = url.partition("?t=")
    assert base == "https://pm.example.com/postmortems/pagerduty-P1"
    assert verify(SECRET, token, "pagerduty-P1", NOW) == "ana@example.com"
