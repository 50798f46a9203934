"""Draft a stored report again, from its incidents and all the evidence gathered so far.

Used when a person switches its language or template, and when a late source has answered. Pure:
the callers load the evidence (timeline and each source's gather state) and store the result.
"""

from __future__ import annotations

from collections.abc import Sequence

from postmortem.evidence.models import GatherState, SourceStatus, TimelineEntry
from postmortem.evidence.responders import known_emails
from postmortem.models import Language, PolicyDecision, PolicyOutcome, Postmortem, TemplateVariant
from postmortem.report.drafting import Draft, draft_report
from postmortem.report.template_catalogue import ReportTemplate

UNFINISHED = (GatherState.FAILED, GatherState.PENDING)


def unfinished(statuses: Sequence[SourceStatus]) -> list[SourceStatus]:
    """The sources whose evidence is missing (failed, or still pending): the draft says so."""
    return [status for status in statuses if status.state in UNFINISHED]


def redraft(
    pm: Postmortem,
    *,
    timeline: list[TimelineEntry],
    statuses: Sequence[SourceStatus],
    language: Language | None = None,
    variant: TemplateVariant | None = None,
    template: ReportTemplate | None = None,
) -> Draft:
    chosen = variant or pm.variant
    return draft_report(
        pm.incidents,
        template=template,
        decision=pm.decision or PolicyDecision(outcome=PolicyOutcome.LIGHTWEIGHT, reasons=[]),
        language=language or pm.language,
        variant=chosen if chosen != TemplateVariant.AUTO else pm.variant,
        zone=pm.timezone,
        now=pm.created_at,
        timeline=timeline,
        unavailable=unfinished(statuses),
        people=known_emails(pm.metrics.people),
    )
