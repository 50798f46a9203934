"""redraft: a stored report drafted again from what its callers loaded (no store in reach)."""

from __future__ import annotations

from datetime import UTC, datetime

from postmortem.evidence.models import EvidenceSource, GatherState, SourceStatus
from postmortem.evidence.timeline import from_incident
from postmortem.models import Language, Postmortem, Status, TemplateVariant
from postmortem.report.redraft import redraft, unfinished
from tests.factories import pagerduty_event

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def stored_report() -> Postmortem:
    incident = pagerduty_event("PREDRAFT").incident
    return Postmortem(
        id="pm-redraft",
        title=incident.title,
        status=Status.DRAFT,
        language=Language.EN,
        variant=TemplateVariant.FULL,
        timezone="Europe/Berlin",
        incidents=[incident],
        workflow_id="postmortem-pagerduty-PREDRAFT",
        version=3,
        created_at=NOW,
        updated_at=NOW,
    )


def status(source: EvidenceSource, state: GatherState, detail: str | None = None) -> SourceStatus:
    return SourceStatus(source=source, incident_id="PREDRAFT", state=state, detail=detail)


STATUSES = [
    status(EvidenceSource.PAGERDUTY, GatherState.COMPLETE),
    status(EvidenceSource.SLACK, GatherState.PENDING),
    status(EvidenceSource.OPSGENIE, GatherState.FAILED, "Opsgenie answered 401"),
    status(EvidenceSource.ALERTMANAGER, GatherState.NOT_CONFIGURED),
]


def test_only_failed_and_pending_sources_are_unfinished() -> None:
    assert [s.source for s in unfinished(STATUSES)] == [EvidenceSource.SLACK, EvidenceSource.OPSGENIE]


def test_the_timeline_section_says_which_sources_are_missing() -> None:
    pm = stored_report()
    draft = redraft(pm, timeline=from_incident(pm.incidents[0]), statuses=STATUSES)
    timeline = next(section.body for section in draft.sections if section.key == "timeline")
    assert "slack is still being gathered for incident PREDRAFT" in timeline
    assert "opsgenie could not be read for incident PREDRAFT: Opsgenie answered 401" in timeline
    for finished in ("pagerduty", "alertmanager"):
        assert f"{finished} could not be read" not in timeline and f"{finished} is still being gathered" not in timeline
    assert (draft.language, draft.variant) == (Language.EN, TemplateVariant.FULL)


def test_a_language_switch_keeps_the_reports_variant() -> None:
    pm = stored_report()
    draft = redraft(pm, timeline=[], statuses=[], language=Language.ZH, variant=TemplateVariant.AUTO)
    assert (draft.language, draft.variant) == (Language.ZH, TemplateVariant.FULL)
    assert draft == redraft(pm, timeline=[], statuses=[], language=Language.ZH, variant=TemplateVariant.AUTO)
