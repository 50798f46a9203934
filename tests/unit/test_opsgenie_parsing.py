"""Opsgenie outgoing webhooks: `Close` starts a post-mortem; createdAt is ms, updatedAt is ns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postmortem.models import EventKind, IncidentEvent, Person, Severity, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.opsgenie import parse_opsgenie, verify_token
from postmortem.webhooks.payload import parse_json_object
from tests.fixtures import fixture_bytes, fixture_json

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOSE = "opsgenie_webhook_close.json"


def close_event(**alert_changes) -> IncidentEvent:
    data = fixture_json(CLOSE)
    data["alert"].update(alert_changes)
    result = parse_opsgenie(data)
    assert isinstance(result, IncidentEvent), result
    return result


def rejected(data) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        parse_opsgenie(data)
    return info.value


def test_close_fixture_gives_an_incident_event():
    raw = fixture_json(CLOSE)
    created_ms = raw["alert"]["createdAt"]
    updated_ns = raw["alert"]["updatedAt"]
    # Computed here: createdAt in milliseconds, updatedAt in nanoseconds (truncated to microseconds).
    expected_created = EPOCH + timedelta(milliseconds=created_ms)
    expected_closed = EPOCH + timedelta(microseconds=updated_ns // 1_000)
    assert expected_created == datetime(2015, 1, 5, 10, 3, 11, 104000, tzinfo=UTC)
    assert expected_closed == datetime(2015, 1, 5, 10, 6, 14, 669001, tzinfo=UTC)

    event = parse_opsgenie(parse_json_object(fixture_bytes(CLOSE)))
    assert isinstance(event, IncidentEvent)
    assert event.source == Source.OPSGENIE
    assert event.kind == EventKind.RESOLVED
    assert event.event_type == "Close"
    assert event.occurred_at == expected_closed
    incident = event.incident
    assert incident.created_at == expected_created
    assert incident.resolved_at == expected_closed
    for moment in (incident.created_at, incident.resolved_at):
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert incident.id == "052652ac-5d1c-464a-812a-7dd18bbfba8c"
    assert incident.number == "23" and isinstance(incident.number, str)
    assert incident.title == "test alert"
    assert incident.services == []  # entity is ""
    assert incident.responders == [Person(email="fili@ifountain.com")]
    assert incident.resolved_by == Person(email="fili@ifountain.com")
    assert incident.severity == Severity.SEV3  # no priority: Opsgenie's default P3
    assert (incident.customer_impact, incident.data_loss, incident.security) == (False, False, False)
    assert incident.raw == raw


def test_close_with_owner_recipients_teams_and_entity():
    incident = close_event(
        owner="Alice",
        recipients=["fili@ifountain.com", {"name": "Bob"}, {"id": "team-id-1"}],
        teams=[{"name": "payments"}, "platform"],
        entity="checkout-api",
    ).incident
    assert [p.label for p in incident.responders] == ["fili@ifountain.com", "Alice", "Bob", "team-id-1"]
    assert [t.name for t in incident.teams] == ["payments", "platform"]
    assert [s.name for s in incident.services] == ["checkout-api"]


@pytest.mark.parametrize(
    "name, action",
    [
        ("opsgenie_webhook_create.json", "Create"),
        ("opsgenie_webhook_acknowledge.json", "Acknowledge"),
        ("opsgenie_webhook_addnote.json", "AddNote"),
    ],
)
def test_other_actions_are_ignored(name, action):
    result = parse_opsgenie(parse_json_object(fixture_bytes(name)))
    assert isinstance(result, Ignored)
    assert result.event_type == action
    assert result.event_id == fixture_json(name)["alert"]["alertId"]
    assert action in result.reason


# --- token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("presented", [None, ""])
def test_missing_token_is_401(presented):
    with pytest.raises(WebhookRejected) as info:
        verify_token(presented, "s3cret-token")
    assert info.value.status_code == 401


@pytest.mark.parametrize("presented", ["wrong", "s3cret-toke", "s3cret-token ", "S3CRET-TOKEN", "ünïcode"])
def test_wrong_token_is_401(presented):
    with pytest.raises(WebhookRejected) as info:
        verify_token(presented, "s3cret-token")
    assert info.value.status_code == 401


@pytest.mark.parametrize("expected", [None, ""])
def test_token_not_configured_is_503(expected):
    with pytest.raises(WebhookRejected) as info:
        verify_token("anything", expected)
    assert info.value.status_code == 503


def test_right_token_passes():
    verify_token("s3cret-token", "s3cret-token")  # raises WebhookRejected when wrong


# --- priority, flags, bad timestamps ---------------------------------------------------------


@pytest.mark.parametrize(
    "priority, severity",
    [
        ("P1", Severity.SEV1),
        ("P2", Severity.SEV2),
        (3, Severity.SEV3),
        ("P4", Severity.SEV4),
        (5, Severity.SEV4),
        (1, Severity.SEV1),
    ],
)
def test_priority_maps_to_severity(priority, severity):
    incident = close_event(priority=priority).incident
    assert incident.severity == severity
    assert incident.priority == str(priority)


@pytest.mark.parametrize(
    "tags, flags",
    [
        (["customer-impact"], (True, False, False)),
        (["data-loss"], (False, True, False)),
        (["security"], (False, False, True)),
        (["Customer-Impact", "DATA-LOSS", "Security"], (True, True, True)),
        (["vip", "tag1"], (False, False, False)),
    ],
)
def test_tags_set_the_flags(tags, flags):
    incident = close_event(tags=tags).incident
    assert (incident.customer_impact, incident.data_loss, incident.security) == flags
    assert incident.tags == tags


@pytest.mark.parametrize("field", ["createdAt", "updatedAt"])
@pytest.mark.parametrize("value", ["yesterday", "1.4e12", " ", "0x10"])
def test_timestamp_string_that_is_not_a_number_is_422(field, value):
    data = fixture_json(CLOSE)
    data["alert"][field] = value
    error = rejected(data)
    assert error.status_code == 422 and field in error.message


def test_numeric_string_created_at_is_read_as_milliseconds():
    data = fixture_json(CLOSE)
    expected = close_event().incident.created_at
    assert close_event(createdAt=str(data["alert"]["createdAt"])).incident.created_at == expected


def test_absent_timestamps():
    data = fixture_json(CLOSE)
    del data["alert"]["createdAt"]
    data["alert"]["updatedAt"] = ""
    event = parse_opsgenie(data)
    assert isinstance(event, IncidentEvent)
    incident = event.incident
    assert incident.created_at is None and incident.resolved_at is None


@pytest.mark.parametrize("change", ["no_action", "no_alert", "alert_not_object", "no_alert_id"])
def test_malformed_delivery_is_422(change):
    data = fixture_json(CLOSE)
    if change == "no_action":
        del data["action"]
    elif change == "no_alert":
        del data["alert"]
    elif change == "alert_not_object":
        data["alert"] = ["x"]
    else:
        del data["alert"]["alertId"]
    assert rejected(data).status_code == 422
