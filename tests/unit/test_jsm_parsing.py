"""The JSM Operations webhook: Opsgenie's alert-action JSON read as source `jsm`, and its token check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postmortem.incident.jsm import incident_from_jsm_alert
from postmortem.incident.payload import MalformedPayload
from postmortem.models import EventKind, IncidentEvent, Severity, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.jsm import parse_jsm, presented_token, verify_jsm_token
from postmortem.webhooks.opsgenie import parse_opsgenie
from postmortem.webhooks.payload import parse_json_object
from postmortem.workflows.identity import postmortem_id_for, workflow_id_for
from tests.fixtures import fixture_bytes, fixture_json

ALERT = "052652ac-5d1c-464a-812a-7dd18bbfba8c"


def test_a_close_is_a_resolved_jsm_incident_read_as_opsgenie_reads_it() -> None:
    event = parse_jsm(parse_json_object(fixture_bytes("jsm_webhook_close.json")))
    assert isinstance(event, IncidentEvent)
    assert (event.source, event.kind, event.event_type) == (Source.JSM, EventKind.RESOLVED, "Close")
    incident = event.incident
    assert (incident.source, incident.id, incident.number) == (Source.JSM, ALERT, "23")
    assert incident.created_at == datetime(2015, 1, 5, 10, 3, 11, 104000, tzinfo=UTC)
    assert event.event_id == f"{ALERT}:1420452374669001603"
    assert workflow_id_for(postmortem_id_for(incident.source.value, incident.id)) == f"postmortem-jsm-{ALERT}"
    same = parse_opsgenie(parse_json_object(fixture_bytes("opsgenie_webhook_close.json")))
    assert isinstance(same, IncidentEvent)
    assert incident.model_dump(exclude={"source"}) == same.incident.model_dump(exclude={"source"})


def test_other_actions_are_acknowledged_and_ignored() -> None:
    ignored = parse_jsm(fixture_json("jsm_webhook_acknowledge.json"))
    assert isinstance(ignored, Ignored) and ignored.event_type == "Acknowledge" and ignored.event_id == ALERT


def test_an_alert_without_a_message_is_named_as_a_jsm_alert() -> None:
    data = fixture_json("jsm_webhook_close.json")
    del data["alert"]["message"]
    event = parse_jsm(data)
    assert isinstance(event, IncidentEvent) and event.incident.title == f"JSM alert {ALERT}"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"alert": {"alertId": "a"}}, "body.action"),
        ({"action": "Close"}, "body.alert"),
        ({"action": "Close", "alert": {"message": "m"}}, "alert.alertId"),
        ({"action": "Close", "alert": {"alertId": "a", "createdAt": "yesterday"}}, "alert.createdAt"),
    ],
)
def test_unreadable_bodies_are_422_naming_the_field(data: dict[str, object], says: str) -> None:
    with pytest.raises(WebhookRejected) as rejected:
        parse_jsm(data)
    assert rejected.value.status_code == 422 and says in rejected.value.message


def test_the_token_comes_as_a_bearer_or_in_our_header() -> None:
    assert presented_token("Bearer abc", None) == "abc"
    assert presented_token("bearer   abc  ", None) == "abc"
    assert presented_token(None, "abc") == "abc"
    assert presented_token("Bearer other", "abc") == "abc"
    assert presented_token("Basic abc", None) is None
    assert presented_token("Bearer ", None) is None
    assert presented_token(None, None) is None
    verify_jsm_token("Bearer s3cret", None, "s3cret")
    verify_jsm_token(None, "s3cret", "s3cret")
    for authorization, header in (("Bearer wrong", None), (None, "wrong"), (None, None), ("s3cret", None)):
        with pytest.raises(WebhookRejected) as rejected:
            verify_jsm_token(authorization, header, "s3cret")
        assert rejected.value.status_code == 401
    with pytest.raises(WebhookRejected) as unset:
        verify_jsm_token("Bearer s3cret", None, None)
    assert unset.value.status_code == 503 and "POSTMORTEM_JSM_WEBHOOK_TOKEN" in unset.value.message


def test_the_ops_api_alert_is_our_incident() -> None:
    alert = fixture_json("jsm_ops_get_alert_response.json")
    incident = incident_from_jsm_alert(alert)
    assert (incident.source, incident.id, incident.number) == (Source.JSM, alert["id"], "1234")
    assert incident.title == alert["message"] and incident.priority == "P3" and incident.severity == Severity.SEV3
    assert incident.services[0].name == "DatabaseServer1"
    assert incident.created_at == datetime(2024, 1, 5, 7, 6, 47, 958000, tzinfo=UTC)
    assert incident.acknowledged_at == datetime(2024, 1, 5, 7, 8, 47, 958000, tzinfo=UTC)
    assert incident.resolved_at == datetime(2024, 1, 5, 9, 6, 47, 958000, tzinfo=UTC)
    assert [p.label for p in incident.responders] == ["John Smith"]
    assert incident_from_jsm_alert({**alert, "status": "acked"}).resolved_at is None
    with pytest.raises(MalformedPayload):
        incident_from_jsm_alert({"message": "no id"})
