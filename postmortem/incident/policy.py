"""Is a post-mortem required for this incident, and is it the full report or the one-pager?

Defaults follow common practice (Google SRE, PagerDuty's guide): SEV1/SEV2 or high urgency, more
than an hour of impact, or flagged customer impact / data loss / security get the full report;
anything else gets the lightweight one-pager, or nothing when the team's policy says skip.
"""

from __future__ import annotations

from postmortem.incident.teams import PolicyConfig
from postmortem.models import Incident, PolicyDecision, PolicyOutcome


def decide(incidents: list[Incident], policy: PolicyConfig) -> PolicyDecision:
    reasons: list[str] = []
    for incident in incidents:
        label = f"{incident.source.value} incident {incident.number or incident.id}"
        if incident.severity.rank <= policy.full_at_or_above.rank:
            reasons.append(
                f"{label} is {incident.severity.value} (full report at {policy.full_at_or_above.value} or worse)"
            )
        if policy.full_if_high_urgency and (incident.urgency or "").lower() == "high":
            reasons.append(f"{label} had high urgency")
        if incident.created_at and incident.resolved_at:
            minutes = (incident.resolved_at - incident.created_at).total_seconds() / 60
            if minutes > policy.full_after_minutes:
                reasons.append(f"{label} lasted {minutes:.0f} minutes (over {policy.full_after_minutes})")
        if policy.full_if_flagged:
            flags = [
                name
                for name, flagged in (
                    ("customer impact", incident.customer_impact),
                    ("data loss", incident.data_loss),
                    ("security", incident.security),
                )
                if flagged
            ]
            if flags:
                reasons.append(f"{label} is flagged: {', '.join(flags)}")
    if reasons:
        return PolicyDecision(outcome=PolicyOutcome.FULL, reasons=reasons)
    return PolicyDecision(
        outcome=policy.otherwise,
        reasons=[f"no full-report criterion matched; the team's policy says {policy.otherwise.value}"],
    )
