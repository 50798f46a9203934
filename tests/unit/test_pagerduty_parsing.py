"""PagerDuty V3/V2 webhook deliveries → IncidentEvent or Ignored, from the real fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from postmortem.models import EventKind, IncidentEvent, Link, Person, Ref, Severity, Source
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.pagerduty import parse_pagerduty
from postmortem.webhooks.payload import parse_json_object
from tests.fixtures import FIXTURES, fixture_bytes, fixture_json

UTC = UTC

V3_RESOLVED = "pagerduty_v3_incident_resolved.json"
V2_RESOLVE = "pagerduty_v2_incident_resolve.json"
V3_DOCS_INCIDENT = "pagerduty_v3_incident_priority_updated_docs.json"

# Every webhook fixture and what it must become: event_type and event id of the Ignored delivery.
IGNORED = {
    "pagerduty_v3_incident_triggered.json": ("incident.triggered", "01BZYIL05THJDFF2Y08X9SVMTU"),
    "pagerduty_v3_incident_acknowledged.json": ("incident.acknowledged", "01BZYK8N47N5JG55J1EEEHPEJI"),
    "pagerduty_v3_incident_annotated.json": ("incident.annotated", "01GI0KTE33V5QXBVIJDEVJFUNE"),
    V3_DOCS_INCIDENT: ("incident.priority_updated", "5ac64822-4adc-4fda-ade0-410becf0de4f"),
    "pagerduty_v3_service_updated_docs.json": ("service.updated", "01BRB6ZP4M6T8ZG4X6BP63ZB9O"),
    "pagerduty_v2_incident_trigger.json": ("incident.trigger", "69a7ced0-a2cd-11e7-a799-22000a15839c"),
    "pagerduty_v2_incident_acknowledge.json": ("incident.acknowledge", "82a33960-a2cd-11e7-8f69-22000affca53"),
    "pagerduty_v2_incident_assign.json": ("incident.assign", "9e7850d0-a2cd-11e7-8f69-22000affca53"),
}
RESOLVED = {V3_RESOLVED, V2_RESOLVE}


def _webhook_fixtures() -> list[str]:
    names = {
        p.name
        for pattern in ("pagerduty_v3_incident_*.json", "pagerduty_v2_incident_*.json")
        for p in FIXTURES.glob(pattern)
    }
    # Of the docs samples, only the ones that are whole webhook envelopes (an `event` object).
    names |= {p.name for p in FIXTURES.glob("pagerduty_v3_*_docs.json") if "event" in json.loads(p.read_bytes())}
    return sorted(names)


WEBHOOK_FIXTURES = _webhook_fixtures()


def parse_fixture(name: str) -> list[IncidentEvent | Ignored]:
    return parse_pagerduty(parse_json_object(fixture_bytes(name)))


def only_event(data: dict) -> IncidentEvent:
    [result] = parse_pagerduty(data)
    assert isinstance(result, IncidentEvent), result
    return result


def assert_utc(moment: datetime | None) -> None:
    assert moment is not None and moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


def rich_v3_resolved() -> dict:
    """The docs' incident (priority, teams, assignees, bridge, created_at) delivered as incident.resolved."""
    data = fixture_json(V3_DOCS_INCIDENT)
    data["event"]["event_type"] = "incident.resolved"
    return data


def test_every_webhook_fixture_is_classified():
    assert set(WEBHOOK_FIXTURES) == set(IGNORED) | RESOLVED


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_every_fixture_parses(name):
    results = parse_fixture(name)
    assert len(results) == 1
    [result] = results
    if name in RESOLVED:
        assert isinstance(result, IncidentEvent)
        assert result.kind == EventKind.RESOLVED
        assert result.source == Source.PAGERDUTY
    else:
        assert isinstance(result, Ignored)
        assert (result.event_type, result.event_id) == IGNORED[name]
        assert result.event_type in result.reason and result.reason


def test_v3_resolved_fixture():
    event = only_event(fixture_json(V3_RESOLVED))
    assert event.event_id == "01BZYH1JJY09P9LEIST8HG2PMN"
    assert event.event_type == "incident.resolved"
    incident = event.incident
    assert incident.source == Source.PAGERDUTY
    assert incident.id == "PCPZE64"
    assert incident.number == "6"
    assert incident.title == "Test Incident"
    assert incident.services == [Ref(id="PA2P440", name="pig208")]
    assert incident.teams == []
    assert incident.resolved_at == datetime(2021, 6, 4, 13, 16, 53, 816000, tzinfo=UTC)
    assert_utc(incident.resolved_at)
    assert event.occurred_at == incident.resolved_at
    assert incident.created_at is None  # real captures carry no created_at
    # No priority; high urgency → SEV2.
    assert incident.priority is None and incident.urgency == "high"
    assert incident.severity == Severity.SEV2
    assert incident.responders == [Person(id="PJ0LVEB", name="PIG 208")]
    assert incident.resolved_by == Person(id="PJ0LVEB", name="PIG 208")
    assert incident.links == [Link(title="PagerDuty incident", url="https://pig208.pagerduty.com/incidents/PCPZE64")]


def test_v3_resolved_with_every_docs_field():
    event = only_event(rich_v3_resolved())
    incident = event.incident
    assert incident.id == "PGR0VU2"
    assert incident.number == "2"
    assert incident.title == "A little bump in the road"
    assert incident.services == [Ref(id="PF9KMXH", name="API Service")]
    assert incident.teams == [Ref(id="PFCVPS0", name="Engineering")]
    assert incident.priority == "P1"
    assert incident.severity == Severity.SEV1  # priority wins over urgency
    assert incident.created_at == datetime(2020, 4, 9, 15, 16, 27, tzinfo=UTC)
    assert incident.resolved_at == datetime(2020, 10, 2, 18, 45, 22, 169000, tzinfo=UTC)
    assert_utc(incident.created_at)
    assert [p.label for p in incident.responders] == ["User 123", "Tenex Engineer"]
    assert incident.resolved_by == Person(id="PLH1HKV", name="Tenex Engineer")
    assert incident.links == [
        Link(title="PagerDuty incident", url="https://acme.pagerduty.com/incidents/PGR0VU2"),
        Link(title="Conference bridge", url="https://example.com"),
    ]


def test_v3_occurred_at_with_offset_is_converted_to_utc():
    data = fixture_json(V3_RESOLVED)
    data["event"]["occurred_at"] = "2021-06-04T15:16:53.816+02:00"
    incident = only_event(data).incident
    assert incident.resolved_at == datetime(2021, 6, 4, 13, 16, 53, 816000, tzinfo=UTC)
    assert_utc(incident.resolved_at)


def test_v2_resolve_fixture():
    event = only_event(fixture_json(V2_RESOLVE))
    assert event.event_id == "e82195c0-a2cd-11e7-8f69-22000affca53"
    assert event.event_type == "incident.resolve"
    assert event.kind == EventKind.RESOLVED
    incident = event.incident
    assert incident.id == "PRORDTY"
    assert incident.number == "33"
    assert incident.title == "My new incident"
    assert incident.services == [Ref(id="PN49J75", name="Production XDB Cluster")]
    assert incident.teams == [Ref(id="P4SI59S", name="Engineering")]
    assert incident.created_at == datetime(2017, 9, 26, 15, 14, 36, tzinfo=UTC)
    assert incident.resolved_at == datetime(2017, 9, 26, 15, 18, 9, tzinfo=UTC)
    assert_utc(incident.resolved_at)
    assert incident.acknowledged_at is None
    assert incident.severity == Severity.SEV2
    assert [p.label for p in incident.responders] == ["Wiley Jacobson", "Laura Haley"]
    assert incident.resolved_by == Person(id="P553OPV", name="Laura Haley")
    assert incident.links == [
        Link(title="PagerDuty incident", url="https://webdemo.pagerduty.com/incidents/PRORDTY"),
        # external references (here the incident's Slack thread) are evidence the timeline can read
        Link(title="Slack", url="http://webdemo.slack.com/archives/C6975FLAZ/p1506438878.000302"),
    ]


def test_raw_payload_is_kept():
    v3 = fixture_json(V3_RESOLVED)
    assert only_event(fixture_json(V3_RESOLVED)).incident.raw == {"event": v3["event"]}
    v2 = fixture_json(V2_RESOLVE)
    assert only_event(fixture_json(V2_RESOLVE)).incident.raw == {"message": v2["messages"][0]}
    # ... and survives the JSON round trip a Temporal payload makes.
    event = only_event(fixture_json(V3_RESOLVED))
    assert IncidentEvent.model_validate_json(event.model_dump_json()).incident.raw == {"event": v3["event"]}


# --- optional fields -------------------------------------------------------------------------

V3_OPTIONAL = [
    ("teams", lambda i: i.teams == []),
    ("priority", lambda i: i.priority is None and i.severity == Severity.SEV2),
    ("urgency", lambda i: i.urgency is None and i.severity == Severity.SEV1),
    ("assignees", lambda i: [p.label for p in i.responders] == ["Tenex Engineer"]),
    ("conference_bridge", lambda i: [link.title for link in i.links] == ["PagerDuty incident"]),
    ("html_url", lambda i: [link.title for link in i.links] == ["Conference bridge"]),
    ("created_at", lambda i: i.created_at is None),
    ("number", lambda i: i.number is None),
    ("title", lambda i: i.title == "PagerDuty incident PGR0VU2"),
    ("service", lambda i: i.services == []),
    ("escalation_policy", lambda i: i.id == "PGR0VU2"),
    ("incident_key", lambda i: i.id == "PGR0VU2"),
]


@pytest.mark.parametrize("key, check", V3_OPTIONAL, ids=[key for key, _ in V3_OPTIONAL])
@pytest.mark.parametrize("how", ["removed", "null"])
def test_v3_optional_data_field_missing_or_null(key, check, how):
    data = rich_v3_resolved()
    if how == "removed":
        del data["event"]["data"][key]
    else:
        data["event"]["data"][key] = None
    assert check(only_event(data).incident)


@pytest.mark.parametrize("how", ["removed", "null"])
def test_v3_without_agent(how):
    data = rich_v3_resolved()
    if how == "removed":
        del data["event"]["agent"]
    else:
        data["event"]["agent"] = None  # automation resolved it
    incident = only_event(data).incident
    assert incident.resolved_by is None
    assert [p.label for p in incident.responders] == ["User 123"]


def test_v3_without_occurred_at_or_event_id():
    data = rich_v3_resolved()
    del data["event"]["occurred_at"]
    del data["event"]["id"]
    del data["event"]["client"]
    event = only_event(data)
    assert event.event_id is None
    assert event.occurred_at is None and event.incident.resolved_at is None


def test_v3_with_only_the_required_fields():
    data = {"event": {"event_type": "incident.resolved", "data": {"id": "PGR0VU2", "type": "incident"}}}
    event = only_event(data)
    incident = event.incident
    assert incident.id == "PGR0VU2"
    assert incident.title == "PagerDuty incident PGR0VU2"
    assert incident.severity == Severity.SEV3
    assert (incident.services, incident.teams, incident.responders, incident.links) == ([], [], [], [])
    assert incident.resolved_by is None


def test_v3_priority_of_an_unexpected_shape_is_ignored():
    data = rich_v3_resolved()
    data["event"]["data"]["priority"] = "P1"  # a string instead of a reference
    data["event"]["data"]["teams"] = {"not": "a list"}
    incident = only_event(data).incident
    assert incident.priority is None and incident.severity == Severity.SEV2
    assert incident.teams == []


V2_OPTIONAL = [
    ("teams", lambda i: i.teams == []),
    ("assignments", lambda i: [p.label for p in i.responders] == ["Laura Haley"]),
    (
        "last_status_change_by",
        lambda i: i.resolved_by is None and [p.label for p in i.responders] == ["Wiley Jacobson"],
    ),
    ("html_url", lambda i: [link.title for link in i.links] == ["Slack"]),
    ("service", lambda i: i.services == []),
    ("urgency", lambda i: i.severity == Severity.SEV3),
    ("created_at", lambda i: i.created_at is None),
    ("incident_number", lambda i: i.number is None),
    ("acknowledgements", lambda i: i.acknowledged_at is None),
]


@pytest.mark.parametrize("key, check", V2_OPTIONAL, ids=[key for key, _ in V2_OPTIONAL])
def test_v2_optional_incident_field_missing(key, check):
    data = fixture_json(V2_RESOLVE)
    del data["messages"][0]["incident"][key]
    assert check(only_event(data).incident)


def test_v2_resolved_at_falls_back_to_the_resolve_log_entry():
    data = fixture_json(V2_RESOLVE)
    del data["messages"][0]["created_on"]
    data["messages"][0]["log_entries"][0]["created_at"] = "2017-09-26T17:20:00+02:00"
    assert only_event(data).incident.resolved_at == datetime(2017, 9, 26, 15, 20, tzinfo=UTC)
    del data["messages"][0]["log_entries"]
    assert only_event(data).incident.resolved_at is None


def test_v2_acknowledgements_give_the_earliest_ack():
    data = fixture_json(V2_RESOLVE)
    user = {"id": "PX", "type": "user_reference", "summary": "Ack Person"}
    data["messages"][0]["incident"]["acknowledgements"] = [
        {"at": "2017-09-26T15:17:00Z", "acknowledger": user},
        {"at": "2017-09-26T15:16:30Z", "acknowledger": user},
    ]
    incident = only_event(data).incident
    assert incident.acknowledged_at == datetime(2017, 9, 26, 15, 16, 30, tzinfo=UTC)
    assert [p.label for p in incident.responders] == ["Wiley Jacobson", "Ack Person", "Laura Haley"]


# --- several messages ------------------------------------------------------------------------


def test_v2_several_messages_give_several_results_in_order():
    trigger = fixture_json("pagerduty_v2_incident_trigger.json")["messages"][0]
    resolve = fixture_json(V2_RESOLVE)["messages"][0]
    ack = fixture_json("pagerduty_v2_incident_acknowledge.json")["messages"][0]
    results = parse_pagerduty({"messages": [trigger, resolve, ack]})
    assert [type(r) for r in results] == [Ignored, IncidentEvent, Ignored]
    assert [r.event_type for r in results] == ["incident.trigger", "incident.resolve", "incident.acknowledge"]
    assert isinstance(results[1], IncidentEvent) and results[1].incident.id == "PRORDTY"


def test_v2_two_resolved_messages_give_two_events():
    first = fixture_json(V2_RESOLVE)["messages"][0]
    second = fixture_json(V2_RESOLVE)["messages"][0]
    second["incident"]["id"] = "PSECOND"
    results = parse_pagerduty({"messages": [first, second]})
    assert [r.incident.id for r in results if isinstance(r, IncidentEvent)] == ["PRORDTY", "PSECOND"]


# --- rejections ------------------------------------------------------------------------------


def rejected(data) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        parse_pagerduty(data)
    return info.value


def test_v3_missing_event_type_is_422_naming_the_field():
    data = fixture_json(V3_RESOLVED)
    del data["event"]["event_type"]
    error = rejected(data)
    assert error.status_code == 422 and "event_type" in error.message


def test_v3_missing_data_id_is_422_naming_the_field():
    data = fixture_json(V3_RESOLVED)
    del data["event"]["data"]["id"]
    error = rejected(data)
    assert error.status_code == 422 and "data.id" in error.message


def test_v2_missing_event_is_422_naming_the_field():
    data = fixture_json(V2_RESOLVE)
    del data["messages"][0]["event"]
    error = rejected(data)
    assert error.status_code == 422 and "messages[0].event" in error.message


def test_v2_missing_incident_id_is_422_naming_the_field():
    data = fixture_json(V2_RESOLVE)
    del data["messages"][0]["incident"]["id"]
    error = rejected(data)
    assert error.status_code == 422 and "messages[0].incident.id" in error.message


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"hello": "world"},
        {"event": "text"},
        {"event": None},
        {"messages": []},
        {"messages": {"a": 1}},
        {"messages": ["x"]},
    ],
)
def test_not_a_pagerduty_webhook_is_422(data):
    assert rejected(data).status_code == 422


@pytest.mark.parametrize(
    "body",
    [b"", b"   \n", b"not json", b'{"event": ', b"[]", b'[{"event": {}}]', b'"text"', b"42", b"null", b"\xc3\x28"],
)
def test_parse_json_object_rejects_non_objects_with_400(body):
    with pytest.raises(WebhookRejected) as info:
        parse_json_object(body)
    assert info.value.status_code == 400


def test_parse_json_object_returns_the_object():
    assert parse_json_object(fixture_bytes(V3_RESOLVED)) == fixture_json(V3_RESOLVED)
