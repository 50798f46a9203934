"""Responders are everyone who acted, once across every source, with their roles (real payloads)."""

from __future__ import annotations

from typing import Any

from postmortem.evidence.key_metrics import compute_metrics
from postmortem.evidence.models import EntryKind, TimelineEntry
from postmortem.evidence.responders import known_emails, responders
from postmortem.evidence.timeline import (
    from_incident,
    from_jsm_log,
    from_jsm_note,
    from_opsgenie_log,
    from_pagerduty_log_entry,
    from_pagerduty_note,
)
from postmortem.incident.jsm import incident_from_jsm_alert
from postmortem.incident.pagerduty import incident_from_v2
from postmortem.incident.teams import TeamsConfig
from postmortem.models import Language, Person, Responder
from postmortem.report.rendering import responders_text
from tests.fixtures import fixture_json


def log_entry(fixture: str) -> dict[str, Any]:
    [message] = fixture_json(fixture)["messages"]
    [entry] = message["log_entries"]
    return entry


def entry_of(fixture: str) -> TimelineEntry:
    entry = from_pagerduty_log_entry(log_entry(fixture), "PRORDTY")
    assert entry is not None
    return entry


def test_log_entries_name_the_people_they_are_about_never_a_service() -> None:
    assigned = entry_of("pagerduty_v2_incident_assign.json")  # "Assigned to Wiley Jacobson by Laura Haley"
    assert assigned.kind == EntryKind.REASSIGNED
    assert assigned.people == [Person(id="PFBSJ2Z", name="Wiley Jacobson")]
    acknowledged = entry_of("pagerduty_v2_incident_acknowledge.json")
    assert (acknowledged.kind, [p.name for p in acknowledged.people]) == (EntryKind.ACKNOWLEDGED, ["Laura Haley"])
    resolved = entry_of("pagerduty_v2_incident_resolve.json")
    assert (resolved.kind, [p.name for p in resolved.people]) == (EntryKind.RESOLVED, ["Laura Haley"])
    # The trigger's agent is a service: no one.
    [trigger] = fixture_json("pagerduty_rest_incident_log_entries_response.json")["log_entries"]
    entry = from_pagerduty_log_entry(trigger, "PT4KHLK")
    assert entry is not None and entry.actor == "My Mail Service" and entry.people == []
    # A note by a person names its author; one by an event rule (bot_user_reference) names no one.
    person_note, rule_note = fixture_json("pagerduty_rest_incident_notes_response.json")["notes"][:2]
    by_person, by_rule = from_pagerduty_note(person_note, "PT4KHLK"), from_pagerduty_note(rule_note, "PT4KHLK")
    assert by_person is not None and [p.name for p in by_person.people] == ["Earline Greenholt"]
    assert by_rule is not None and by_rule.people == []
    # Opsgenie: who acknowledged; a recipient who only viewed the alert did not act.
    ack, viewed = fixture_json("opsgenie_api_list_alert_logs_response.json")["data"]
    og_ack, og_viewed = from_opsgenie_log(ack, "og-1"), from_opsgenie_log(viewed, "og-1")
    assert og_ack is not None and og_ack.people == [Person(email="neo@opsgenie.com")]
    assert og_viewed is not None and og_viewed.people == []


def test_an_escalation_names_whom_it_was_escalated_to() -> None:
    # PagerDuty's schema gives escalate_log_entry the same `assignees` as assign_log_entry
    # (api-schema openapiv3.json, components.schemas.EscalateLogEntry): the real assign entry, retyped.
    entry = log_entry("pagerduty_v2_incident_assign.json") | {"type": "escalate_log_entry", "id": "ESC1"}
    escalated = from_pagerduty_log_entry(entry, "PRORDTY")
    assert escalated is not None and escalated.kind == EntryKind.ESCALATED
    assert [p.name for p in escalated.people] == ["Wiley Jacobson"]
    assigned = entry_of("pagerduty_v2_incident_assign.json")
    later = assigned.model_copy(update={"key": "later", "at": escalated.at.replace(year=2018)})
    found = responders([], [assigned, escalated, later])
    assert found == [Responder(name="Wiley Jacobson", roles=["assigned", "escalated_to", "reassigned_to"])]


def timeline() -> list[TimelineEntry]:
    entries = [
        entry_of(name)
        for name in (
            "pagerduty_v2_incident_assign.json",
            "pagerduty_v2_incident_acknowledge.json",
            "pagerduty_v2_incident_resolve.json",
        )
    ]
    ack = from_opsgenie_log(fixture_json("opsgenie_api_list_alert_logs_response.json")["data"][0], "og-1")
    note = from_pagerduty_note(fixture_json("pagerduty_rest_incident_notes_response.json")["notes"][0], "PRORDTY")
    assert ack is not None and note is not None
    return [*entries, ack, note]


def test_everyone_who_acted_once_across_sources_mapped_through_people() -> None:
    [message] = fixture_json("pagerduty_v2_incident_resolve.json")["messages"]
    incident = incident_from_v2(message, "messages[0]")
    people = {"Laura Haley": "neo@opsgenie.com", "PXPGF42": "earline@example.com"}
    found = responders([incident], timeline() + from_incident(incident), people)
    assert found == [
        Responder(name="Wiley Jacobson", roles=["assigned"]),
        # PagerDuty's Laura Haley is Opsgenie's neo@opsgenie.com ([people]): one responder.
        Responder(name="Laura Haley", email="neo@opsgenie.com", roles=["acknowledged", "resolved"]),
        Responder(name="Earline Greenholt", email="earline@example.com", roles=["wrote_note"]),
    ]
    metrics = compute_metrics([incident], timeline(), people)
    assert metrics.people == found
    assert metrics.responders == ["Wiley Jacobson", "Laura Haley", "Earline Greenholt"]
    assert known_emails(found) == {"Laura Haley": "neo@opsgenie.com", "Earline Greenholt": "earline@example.com"}
    # Without [people] the Opsgenie address stays a person of its own.
    assert [r.label for r in responders([incident], timeline())] == [
        "Wiley Jacobson",
        "Laura Haley",
        "Earline Greenholt",  # the timeline in time order: her note (2013) before the Opsgenie ack (2017)
        "neo@opsgenie.com",
    ]


def jsm_log_of(opsgenie_log: dict[str, Any]) -> dict[str, Any]:
    """An Opsgenie alert log in JSM's AlertLog fields: JSM's logs are Opsgenie's texts (fixtures README)."""
    return {
        "logTime": opsgenie_log["createdAt"],
        "logType": opsgenie_log["type"],
        "log": opsgenie_log["log"],
        "owner": opsgenie_log["owner"],
    }


def test_jsm_actors_are_responders_once_with_the_same_people_elsewhere() -> None:
    alert = fixture_json("jsm_ops_get_alert_response.json")  # owner "John Smith"
    incident = incident_from_jsm_alert(alert)
    [system_log] = fixture_json("jsm_ops_list_alert_logs_response.json")["values"]
    [note] = fixture_json("jsm_ops_list_alert_notes_response.json")["values"]  # by user@atlassian.com
    og_ack, og_viewed = fixture_json("opsgenie_api_list_alert_logs_response.json")["data"]
    entries = [
        from_jsm_log(system_log, incident.id),
        from_jsm_log(jsm_log_of(og_ack), incident.id),
        from_jsm_log(jsm_log_of(og_viewed), incident.id),
        from_jsm_note(note, incident.id),
    ]
    assert all(entry is not None for entry in entries)
    assigning, acked, viewed, noted = [entry for entry in entries if entry is not None]
    # "system" assigning a team and a recipient who only viewed the alert: no one acted.
    assert (assigning.kind, assigning.people) == (EntryKind.REASSIGNED, [])
    assert (viewed.kind, viewed.people) == (EntryKind.NOTIFIED, [])
    assert (acked.kind, acked.people) == (EntryKind.ACKNOWLEDGED, [Person(email="neo@opsgenie.com")])
    assert (noted.kind, noted.people) == (EntryKind.NOTE, [Person(email="user@atlassian.com")])

    people = {"John Smith": "user@atlassian.com"}  # the teams file's [people]
    jsm_only = [assigning, acked, viewed, noted]
    expected = [
        # The alert's owner and the note's author are one person through [people].
        Responder(name="John Smith", email="user@atlassian.com", roles=["assigned", "wrote_note"]),
        Responder(email="neo@opsgenie.com", roles=["acknowledged"]),
    ]
    assert responders([incident], jsm_only, people) == expected
    # The same acknowledgement read from Opsgenie too (a migration's overlap): still one neo, by email.
    from_opsgenie = from_opsgenie_log(og_ack, "og-1")
    assert from_opsgenie is not None
    assert responders([incident], [*jsm_only, from_opsgenie], people) == expected
    metrics = compute_metrics([incident], jsm_only, people)
    assert metrics.responders == ["John Smith", "neo@opsgenie.com"]


def test_roles_are_named_in_the_reports_language() -> None:
    metrics = compute_metrics([], [])
    metrics.people = [Responder(name="Laura Haley", roles=["acknowledged", "resolved"])]
    assert responders_text(metrics, Language.EN) == "Laura Haley (acknowledged, resolved)"
    assert responders_text(metrics, Language.ZH) == "Laura Haley（确认、解决）"


def test_the_teams_file_people_reach_the_draft() -> None:
    team = TeamsConfig(people={"Laura Haley": "laura@example.com"}).resolve(
        incident_from_v2(fixture_json("pagerduty_v2_incident_resolve.json")["messages"][0], "messages[0]")
    )
    assert team.people == {"laura haley": "laura@example.com"}
    assert [a.email for a in team.responders] == ["laura@example.com"]
