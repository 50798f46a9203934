"""The incident builders of the domain (postmortem.incident.pagerduty / .opsgenie), read from real REST
answers: what the link step gets from the APIs looks like what the webhooks deliver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postmortem.incident.opsgenie import incident_from_alert_api
from postmortem.incident.pagerduty import incident_from_rest
from postmortem.incident.payload import MalformedPayload
from postmortem.models import IncidentEvent, Person, Severity, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.pagerduty import parse_pagerduty
from tests.fixtures import fixture_json


def test_a_pagerduty_incident_from_the_rest_api() -> None:
    data = fixture_json("pagerduty_rest_get_incident_response.json")["incident"]
    incident = incident_from_rest(data)
    assert (incident.source, incident.id, incident.number) == (Source.PAGERDUTY, "PT4KHLK", "1234")
    assert incident.title == "The server is on fire."
    assert incident.created_at == datetime(2015, 10, 6, 21, 30, 42, tzinfo=UTC)
    assert incident.resolved_at is None  # acknowledged, not resolved: no end time yet
    assert incident.raw == {"incident": data}


def test_a_resolved_rest_incident_reads_like_its_v2_webhook() -> None:
    data = dict(fixture_json("pagerduty_rest_get_incident_response.json")["incident"], status="resolved")
    linked = incident_from_rest(data)
    assert linked.resolved_at == datetime(2015, 10, 6, 21, 38, 23, tzinfo=UTC)  # last_status_change_at
    message = {"event": "incident.resolve", "incident": data, "created_on": data["last_status_change_at"]}
    [delivered] = parse_pagerduty({"messages": [message]})
    assert isinstance(delivered, IncidentEvent)
    assert delivered.incident.model_copy(update={"raw": {}}) == linked.model_copy(update={"raw": {}})


def test_unreadable_fields_name_themselves() -> None:
    with pytest.raises(MalformedPayload, match=r"messages\[0\]\.incident is missing"):
        incident_from_rest({})
    bad_time = {"id": "P1", "created_at": "yesterday"}
    with pytest.raises(MalformedPayload, match=r"messages\[0\]\.incident\.created_at is not an ISO 8601 timestamp"):
        incident_from_rest(bad_time)
    # the webhook answers the same words as 422
    with pytest.raises(WebhookRejected) as rejected:
        parse_pagerduty({"messages": [{"event": "incident.resolve", "incident": bad_time}]})
    assert rejected.value.status_code == 422 and "incident.created_at is not an ISO 8601" in rejected.value.message


def test_an_opsgenie_alert_from_the_alert_api() -> None:
    alert = fixture_json("opsgenie_api_list_alerts_response.json")["data"][0]
    incident = incident_from_alert_api(alert)
    created = datetime(2017, 3, 21, 20, 32, 52, 353000, tzinfo=UTC)
    assert (incident.source, incident.id, incident.number) == (Source.OPSGENIE, alert["id"], "1791")
    assert (incident.title, incident.severity, incident.priority) == ("Our servers are in danger", Severity.SEV4, "P4")
    assert incident.created_at == created
    assert incident.acknowledged_at == created + timedelta(milliseconds=15702)
    assert incident.resolved_at == created + timedelta(milliseconds=60503)  # closed: report.closeTime after creation
    assert incident.responders == [
        Person(email="agent_smith@opsgenie.com"),
        Person(email="neo@opsgenie.com"),
        Person(email="morpheus@opsgenie.com"),
    ]
    assert incident.tags == ["OverwriteQuietHours", "Critical"] and incident.raw == {"alert": alert}
    still_open = incident_from_alert_api(dict(alert, status="open"))
    assert still_open.resolved_at is None
    with pytest.raises(MalformedPayload, match=r"alert\.id is missing"):
        incident_from_alert_api({"message": "no id"})
