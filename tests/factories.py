"""Build domain objects for tests from the real fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from postmortem.incident.policy import decide
from postmortem.incident.teams import PolicyConfig
from postmortem.models import Incident, IncidentEvent, Language, Status, TemplateVariant
from postmortem.report.drafting import draft_report
from postmortem.store.postmortems import NewPostmortem
from postmortem.webhooks.pagerduty import parse_pagerduty
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from tests.fixtures import fixture_json

RESOLVED_V3 = "pagerduty_v3_incident_resolved.json"


def pagerduty_resolved_body(
    incident_id: str = "PCPZE64", resolved_at: datetime | None = None, **data_changes: object
) -> bytes:
    """The real V3 resolved capture, for another incident id (and resolution time) if asked."""
    payload = fixture_json(RESOLVED_V3)
    payload["event"]["data"]["id"] = incident_id
    if resolved_at is not None:
        payload["event"]["occurred_at"] = resolved_at.isoformat()
    payload["event"]["data"].update(data_changes)
    return json.dumps(payload).encode()


def pagerduty_event(
    incident_id: str = "PCPZE64", resolved_at: datetime | None = None, **data_changes: object
) -> IncidentEvent:
    [event] = parse_pagerduty(json.loads(pagerduty_resolved_body(incident_id, resolved_at, **data_changes)))
    assert isinstance(event, IncidentEvent)
    return event


def new_postmortem(
    incident: Incident,
    *,
    created_at: datetime | None = None,
    team: str | None = None,
    language: Language = Language.EN,
    status: Status = Status.DRAFT,
) -> NewPostmortem:
    created_at = created_at or datetime.now(UTC)
    decision = decide([incident], PolicyConfig())
    draft = draft_report(
        [incident], decision=decision, language=language, variant=TemplateVariant.AUTO, zone="UTC", now=created_at
    )
    pm_id = postmortem_id_for(incident.source.value, incident.id)
    return NewPostmortem(
        id=pm_id,
        workflow_id=workflow_id_for(pm_id),
        title=draft.title,
        status=status,
        team=team,
        language=draft.language,
        variant=draft.variant,
        timezone="UTC",
        decision=decision,
        sections=draft.sections,
        metrics=draft.metrics,
        incident=incident,
        created_at=created_at,
    )
