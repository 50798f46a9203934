"""Draft a stored report again, from its incidents and all the evidence gathered so far.

Used when a person switches its language or template, and when a late source has answered.
"""

from __future__ import annotations

from postmortem.evidence.models import GatherState
from postmortem.models import Language, PolicyDecision, PolicyOutcome, Postmortem, TemplateVariant
from postmortem.report.drafting import Draft, draft_report
from postmortem.report.template_catalogue import ReportTemplate
from postmortem.store.evidence import EvidenceStore

UNFINISHED = (GatherState.FAILED, GatherState.PENDING)


async def redraft(
    evidence: EvidenceStore,
    pm: Postmortem,
    language: Language | None = None,
    variant: TemplateVariant | None = None,
    template: ReportTemplate | None = None,
) -> Draft:
    statuses = await evidence.statuses(pm.id)
    chosen = variant or pm.variant
    return draft_report(
        pm.incidents,
        template=template,
        decision=pm.decision or PolicyDecision(outcome=PolicyOutcome.LIGHTWEIGHT, reasons=[]),
        language=language or pm.language,
        variant=chosen if chosen != TemplateVariant.AUTO else pm.variant,
        zone=pm.timezone,
        now=pm.created_at,
        timeline=await evidence.entries(pm.id),
        unavailable=[status for status in statuses if status.state in UNFINISHED],
    )
