"""The public summary: the customer-facing status-page text of a report, with what is internal redacted.

Only the title, the impact window, the duration, the affected services and the Summary, Impact and
Resolution sections go out; names, emails, addresses and internal host names in them are replaced
by "[redacted]" (the rules are in `public_summary`'s docstring). Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from postmortem.intervals import union
from postmortem.models import Language, Postmortem
from postmortem.report.formatting import format_duration, format_local

__all__ = ["REDACTED", "public_summary", "redactor"]

REDACTED = "[redacted]"

_SUMMARY_LABELS = {
    Language.EN: {
        "window": "Impact window:",
        "duration": "Duration:",
        "services": "Affected services:",
        "ongoing": "ongoing",
        "unknown": "unknown",
    },
    Language.ZH: {
        "window": "影响时段：",
        "duration": "持续时长：",
        "services": "受影响服务：",
        "ongoing": "仍在持续",
        "unknown": "未知",
    },
}
_PUBLIC_SECTIONS = ("summary", "impact", "resolution")

# Boundaries are ASCII on purpose: in Chinese text a host, address or name sits right next to CJK
# characters, which Python's Unicode \w would count as part of the same word.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9\-._~:/?#@!$&*+,;=%\[\]]+")
_IPV4 = re.compile(
    r"(?<![A-Za-z0-9_.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?:/\d{1,2})?(?::\d{1,5})?(?![A-Za-z0-9_.]*[A-Za-z0-9_])"
)
_IPV6 = re.compile(r"(?<![A-Za-z0-9_:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![A-Za-z0-9_:])", re.IGNORECASE)
_HOSTNAME = re.compile(
    r"(?<![A-Za-z0-9_.@-])(?:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}(?::\d{1,5})?"
    r"(?![A-Za-z0-9_-])",
    re.IGNORECASE,
)
# Host names are "internal" when they end in a private-use suffix or carry an environment / private
# label anywhere (db-3.prod.acme.net). Public names such as status.example.com are kept.
_INTERNAL_SUFFIXES = (
    "internal",
    "local",
    "localdomain",
    "corp",
    "lan",
    "intranet",
    "intra",
    "private",
    "priv",
    "home.arpa",
    "localhost",
    "cluster",
    "svc",
)
_INTERNAL_LABELS = {
    "internal",
    "intranet",
    "intra",
    "corp",
    "prod",
    "production",
    "staging",
    "stage",
    "stg",
    "preprod",
    "dev",
    "qa",
    "uat",
    "mgmt",
    "infra",
    "private",
    "priv",
    "lan",
    "local",
    "svc",
}


def _is_internal_host(host: str) -> bool:
    host = host.lower().rstrip(".").split(":")[0]
    labels = host.split(".")
    if any(host == suffix or host.endswith("." + suffix) for suffix in _INTERNAL_SUFFIXES):
        return True
    return any(label in _INTERNAL_LABELS for label in labels[:-1])


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        return False
    return True


def _name_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    """Whole names case-insensitively, and each part of a multi-word name of 2+ letters as written."""
    terms: set[tuple[str, bool]] = set()
    for name in names:
        name = " ".join(name.split())
        if len(name) < 2:
            continue
        terms.add((name, True))
        parts = name.split(" ")
        if len(parts) > 1:
            terms.update((part, False) for part in parts if len(part) >= 2)
    patterns = []
    for term, ignore_case in sorted(terms, key=lambda t: -len(t[0])):
        body = re.escape(term)
        if term.isascii():  # Latin names stop at word boundaries; CJK names have none to stop at
            body = rf"(?<![A-Za-z0-9_]){body}(?![A-Za-z0-9_])"
        patterns.append(re.compile(body, re.IGNORECASE if ignore_case else 0))
    return patterns


def _people(pm: Postmortem, extra: Iterable[str]) -> tuple[list[str], list[str]]:
    """(names, emails) of everyone the report names: responders, resolvers, action-item owners, `extra`."""
    names: set[str] = set(pm.metrics.responders) | {item.owner for item in pm.action_items if item.owner}
    emails: set[str] = set()
    for incident in pm.incidents:
        for person in [*incident.responders, *([incident.resolved_by] if incident.resolved_by else [])]:
            if person.name:
                names.add(person.name)
            if person.email:
                emails.add(person.email)
    for value in extra:
        (emails if "@" in value else names).add(value)
    for value in list(names):  # a label may be an email (Person.label falls back to it)
        if "@" in value:
            emails.add(value)
    names.discard("unknown")  # Person.label's placeholder for nobody in particular, not a name
    return sorted(names), sorted(emails)


def _spans(text: str, patterns: Iterable[re.Pattern[str]]) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for pattern in patterns for m in pattern.finditer(text) if m.end() > m.start()]


def _redactor(pm: Postmortem, redact: Sequence[str], people: Sequence[str]) -> Callable[[str], str]:
    names, emails = _people(pm, people)
    custom = [re.compile(pattern) for pattern in redact]
    literal = _name_patterns(names) + [re.compile(re.escape(email), re.IGNORECASE) for email in emails]

    def apply(text: str) -> str:
        # Every rule finds its spans on the original text; overlapping spans merge and are replaced once,
        # so no rule ever matches inside another's "[redacted]".
        spans = _spans(text, custom) + _spans(text, literal) + _spans(text, [_EMAIL])
        for match in _URL.finditer(text):
            try:
                host = urlsplit(match.group()).hostname or ""
            except ValueError:  # a malformed URL (bad port, bad IPv6 literal) is not worth the risk
                host = "localhost"
            if _is_ip(host) or _is_internal_host(host):
                spans.append((match.start(), match.end()))
        spans += [(m.start(), m.end()) for m in _IPV4.finditer(text) if _is_ip(m.group().split(":")[0])]
        spans += [(m.start(), m.end()) for m in _IPV6.finditer(text) if _is_ip(m.group())]
        spans += [(m.start(), m.end()) for m in _HOSTNAME.finditer(text) if _is_internal_host(m.group())]
        if not spans:
            return text
        out, position = [], 0
        for start, end in union(spans):
            out += [text[position:start], REDACTED]
            position = end
        out.append(text[position:])
        return "".join(out)

    return apply


def redactor(pm: Postmortem, *, redact: Sequence[str] = (), people: Sequence[str] = ()) -> Callable[[str], str]:
    """The public summary's redaction as a function of text (the rules in `public_summary`), for
    anything else that leaves the house with the same care (the evidence a model is sent)."""
    return _redactor(pm, redact, people)


def public_summary(pm: Postmortem, *, redact: Sequence[str] = (), people: Sequence[str] = ()) -> str:
    """The customer-facing status-page summary, in Markdown, in the report's language.

    It has the title, the impact window (impact start, else trigger, to resolution, each in the
    report's time zone with UTC alongside), the duration, the affected services, and the text of the
    Summary, Impact and Resolution sections (those the report has and has filled in). Root cause,
    timeline, detection, action items and lessons learned are internal and left out: a status page
    gives the short cause the Summary states, not the internals.

    Everything taken from the report (title, services, section text) is redacted; the labels and
    times this function writes are not. Replaced by "[redacted]":

    * every match of each regular expression in `redact` (Python `re` syntax, case-sensitive unless
      the pattern says `(?i)`; an invalid pattern raises `re.error`);
    * the names and emails of the people the report names — responders, who resolved, action-item
      owners — and of `people`: a full name case-insensitively, and each word of a multi-word name as
      written (so "Alice" of "Alice Smith" goes too);
    * any email address;
    * IPv4 (with optional /prefix and :port) and IPv6 addresses;
    * internal host names: dotted names ending in .internal, .local, .localdomain, .corp, .lan,
      .intranet, .intra, .private, .priv, .home.arpa, .cluster, .svc, or with an environment label such
      as prod, staging, dev, qa, corp, mgmt in them (db-3.prod.acme.net); a URL whose host is internal
      or an IP address goes whole. Public names (status.example.com) are kept.
    """
    labels = _SUMMARY_LABELS[pm.language]
    clean = _redactor(pm, redact, people)
    m = pm.metrics
    start = m.impact_started_at or m.started_at
    start_text = format_local(start, pm.timezone) if start else labels["unknown"]
    end_text = format_local(m.closed_at, pm.timezone) if m.closed_at else labels["ongoing"]
    services = pm.services or m.services
    lines = [
        f"# {clean(pm.title)}",
        "",
        f"- **{labels['window']}** {start_text} – {end_text}",
        f"- **{labels['duration']}** {format_duration(m.duration_seconds, pm.language) or '—'}",
        f"- **{labels['services']}** {clean(', '.join(services)) if services else '—'}",
    ]
    by_key = {section.key: section for section in pm.sections}
    for key in _PUBLIC_SECTIONS:
        section = by_key.get(key)
        if section is None or not section.body.strip():
            continue
        lines += ["", f"## {clean(section.title)}", "", clean(section.body.strip())]
    return "\n".join(lines) + "\n"
