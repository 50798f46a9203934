"""'Have we seen this before?': what makes two reports alike, as words a full-text index can rank.

Pure: the store (postmortem/store/similarity.py) indexes each report's `document` and ranks the
others against its `query` with the database's own full-text search (PostgreSQL `ts_rank`, SQLite
FTS5 `bm25`). Both databases get the same prepared words, so they tokenise alike: lower-case
letters and digits (numbers alone left out: a title starts with its date), Chinese as overlapping two-character pieces (neither database splits Chinese
words), stop words left out. A service and the cause category also become one whole token each
(`svcpaymentsapi`, `causeconfiguration`), so the same service counts for more than a shared word.

Weights, strongest first: the same services; the same alerts and cause category; words of the title
(with the words of the service names) and of the root cause (with the alerts' summaries). Who may see a listed report is `may_list`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from postmortem.models import Postmortem, Visibility

MAX_SIMILAR = 5
MAX_QUERY_WORDS = 60
_WORD = re.compile(r"[a-z0-9]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
STOP_WORDS = frozenset(
    """a an and are as at be been but by for from had has have in into is it its of on or that the
    this to was were will with after before during not no we our us they their there then than so
    which who when while what where how why all any each also via per due incident incidents
    alert alerts firing fired resolved""".split()
)


def words(text: str | None) -> list[str]:
    """The text's words as both indexes see them (Chinese in overlapping pairs), stop words dropped."""
    found: list[str] = []
    for token in _WORD.findall((text or "").lower()):
        if _CJK.match(token):
            found += [token] if len(token) == 1 else [token[i : i + 2] for i in range(len(token) - 1)]
        elif len(token) > 1 and token not in STOP_WORDS and not token.isdigit():
            found.append(token)
    return found


def whole(prefix: str, name: str) -> str:
    """One token for a whole name (a service, the cause category)."""
    return prefix + "".join(words(name.replace("_", " ")))


@dataclass(frozen=True)
class Document:
    """What the index holds of one report, per weighted column (each a space-separated word list)."""

    title: str
    services: str
    alerts: str
    cause: str
    body: str


def root_cause(pm: Postmortem) -> str:
    return next((s.body for s in pm.sections if s.key == "root_cause"), "")


def alert_name(text: str) -> str | None:
    """The alert's own name from a timeline entry ("HighErrorRate: summary" from Alertmanager)."""
    head, colon, _ = text.partition(":")
    name = head.strip()
    return name if colon and name and " " not in name and name.casefold() != "alert" else None


def document(
    *, title: str, services: Sequence[str], alerts: Sequence[str], cause: str | None, root_cause: str
) -> Document:
    """Services and alert names as whole tokens in their columns; the words of a service's name
    ("payments" of "payments-api") count as title words only, so a shared "api" weighs little."""
    service_words = [w for name in services for w in words(name)]
    alert_names = [whole("alert", name) for text in alerts if (name := alert_name(text))]
    # An alert's summary ("error rate above 5%") is as weak as a word of the root cause.
    summaries = [w for text in alerts for w in words(text.partition(":")[2] if alert_name(text) else text)]
    return Document(
        title=" ".join(dict.fromkeys(words(title) + service_words)),
        services=" ".join(dict.fromkeys(whole("svc", name) for name in services)),
        alerts=" ".join(dict.fromkeys(alert_names)),
        cause=whole("cause", cause) if cause else "",
        body=" ".join(dict.fromkeys(words(root_cause) + summaries)),
    )


@dataclass(frozen=True)
class Query:
    """The words to look for, per column group; empty when the report says nothing to compare."""

    services: list[str]
    alerts: list[str]
    cause: list[str]
    text: list[str]  # matched against the title and the root cause

    @property
    def empty(self) -> bool:
        return not (self.services or self.alerts or self.cause or self.text)


def _unique(items: Iterable[str], limit: int) -> list[str]:
    return list(dict.fromkeys(items))[:limit]


def query(pm: Postmortem, alerts: Sequence[str]) -> Query:
    """What `pm` is about: its services, alerts, cause category, and the words of title and root cause."""
    doc = document(
        title=pm.title,
        services=pm.services or pm.metrics.services,
        alerts=alerts,
        cause=pm.cause_category.value if pm.cause_category else None,
        root_cause=root_cause(pm),
    )
    text = (doc.title + " " + doc.body).split()
    return Query(
        services=_unique(doc.services.split(), 20),
        alerts=_unique(doc.alerts.split(), 20),
        cause=[doc.cause] if doc.cause else [],
        text=_unique(text, MAX_QUERY_WORDS),
    )


def may_list(report: Postmortem, other_visibility: Visibility, other_team: str | None) -> bool:
    """May a report with that visibility be listed in `report`? Only when everyone who may read `report`
    may read it too: an organisation-wide report anywhere, a team report only in its own team's
    team-visible reports (their readers are that team, admins, authors and reviewers), a private one never."""
    if other_visibility == Visibility.ORGANISATION:
        return True
    return (
        other_visibility == Visibility.TEAM
        and report.visibility == Visibility.TEAM
        and report.team is not None
        and other_team == report.team
    )
