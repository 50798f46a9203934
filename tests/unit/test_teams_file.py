"""The teams file: fallbacks team → [default] → global, team lookup, and errors with their line."""

from __future__ import annotations

import re
from typing import Any

import pytest

from postmortem.incident.teams_file import TeamsFileError, parse_teams
from postmortem.models import Incident, Language, PolicyOutcome, Ref, Severity, Source, TemplateVariant

FILENAME = "teams-under-test.toml"

TEAMS_TOML = """\
# Post-mortem settings per team.
[default]
language = "zh"
timezone = "Asia/Shanghai"

[default.policy]
full_at_or_above = "SEV3"
full_after_minutes = 30
otherwise = "skip"

[payments]
language = "en"
template = "full"

[payments.policy]
full_at_or_above = "SEV1"
full_if_high_urgency = false

[PFCVPS0]
name = "Engineering"
timezone = "Europe/Berlin"

[services."API Service"]
team = "payments"
owners = ["alice@example.com", "bob@example.com"]
"""

GLOBALS: dict[str, Any] = dict(language=Language.EN, template=TemplateVariant.LIGHTWEIGHT, timezone="UTC")


def config(text: str = TEAMS_TOML):
    return parse_teams(text, FILENAME, **GLOBALS)


def incident(*, teams=(), services=()) -> Incident:
    return Incident(
        source=Source.PAGERDUTY, id="P1", title="t", severity=Severity.SEV3, teams=list(teams), services=list(services)
    )


def policy_tuple(settings):
    p = settings.policy
    return (p.full_at_or_above, p.full_if_high_urgency, p.full_after_minutes, p.full_if_flagged, p.otherwise)


# --- resolve() -------------------------------------------------------------------------------


def test_team_keyed_by_name_inherits_key_by_key():
    settings = config().resolve(incident(teams=[Ref(id="PUNKNOWN", name="Payments")]))
    assert settings.team == "payments"
    assert settings.language == Language.EN  # team
    assert settings.template == TemplateVariant.FULL  # team
    assert settings.timezone == "Asia/Shanghai"  # [default]
    assert policy_tuple(settings) == (
        Severity.SEV1,  # team
        False,  # team
        30,  # [default.policy]
        True,  # built-in default
        PolicyOutcome.SKIP,  # [default.policy]
    )
    assert settings.owners == []


def test_team_keyed_by_pagerduty_id():
    settings = config().resolve(incident(teams=[Ref(id="PFCVPS0", name="Renamed in PagerDuty")]))
    assert settings.team == "Engineering"  # the table's name
    assert settings.language == Language.ZH  # [default]
    assert settings.template == TemplateVariant.LIGHTWEIGHT  # global setting
    assert settings.timezone == "Europe/Berlin"  # team
    assert policy_tuple(settings) == (Severity.SEV3, True, 30, True, PolicyOutcome.SKIP)


@pytest.mark.parametrize("name", ["Engineering", "engineering", "ENGINEERING", "pfcvps0"])
def test_team_by_name_case_insensitively(name):
    settings = config().resolve(incident(teams=[Ref(name=name)]))
    assert settings.team == "Engineering"
    assert settings.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    "service", [Ref(id="PF9KMXH", name="API Service"), Ref(name="api service"), Ref(id="X", name="API SERVICE")]
)
def test_team_via_the_services_mapping(service):
    settings = config().resolve(incident(services=[service]))
    assert settings.team == "payments"
    assert settings.language == Language.EN
    assert settings.owners == ["alice@example.com", "bob@example.com"]


def test_service_keyed_by_id():
    text = TEAMS_TOML + '\n[services.PF9KMXH]\nteam = "PFCVPS0"\nowners = ["carol@example.com"]\n'
    settings = config(text).resolve(incident(services=[Ref(id="PF9KMXH", name="Renamed")]))
    assert settings.team == "Engineering"
    assert settings.owners == ["carol@example.com"]


def test_incident_team_wins_over_service_team_but_owners_still_apply():
    settings = config().resolve(
        incident(teams=[Ref(id="PFCVPS0", name="Engineering")], services=[Ref(name="API Service")])
    )
    assert settings.team == "Engineering"
    assert settings.owners == ["alice@example.com", "bob@example.com"]


def test_no_team_uses_default_then_globals():
    settings = config().resolve(incident())
    assert settings.team is None
    assert (settings.language, settings.template, settings.timezone) == (
        Language.ZH,
        TemplateVariant.LIGHTWEIGHT,
        "Asia/Shanghai",
    )
    assert policy_tuple(settings) == (Severity.SEV3, True, 30, True, PolicyOutcome.SKIP)


def test_unknown_team_keeps_its_name_and_gets_the_defaults():
    settings = config().resolve(incident(teams=[Ref(name="Growth")]))
    assert settings.team == "Growth"
    assert settings.language == Language.ZH and settings.timezone == "Asia/Shanghai"


def test_without_default_table_everything_comes_from_globals():
    cfg = parse_teams(
        '[payments]\nlanguage = "zh"\n',
        FILENAME,
        language=Language.EN,
        template=TemplateVariant.FULL,
        timezone="America/New_York",
    )
    settings = cfg.resolve(incident())
    assert (settings.language, settings.template, settings.timezone) == (
        Language.EN,
        TemplateVariant.FULL,
        "America/New_York",
    )
    assert policy_tuple(settings) == (Severity.SEV2, True, 60, True, PolicyOutcome.LIGHTWEIGHT)
    assert cfg.resolve(incident(teams=[Ref(name="payments")])).language == Language.ZH


@pytest.mark.parametrize(
    "field, team_value, default_value, expected_team, expected_other",
    [
        ("full_at_or_above", '"SEV1"', '"SEV3"', Severity.SEV1, Severity.SEV3),
        ("full_if_high_urgency", "false", "true", False, True),
        ("full_after_minutes", "0", "120", 0, 120),
        ("full_if_flagged", "false", "true", False, True),
        ("otherwise", '"skip"', '"full"', PolicyOutcome.SKIP, PolicyOutcome.FULL),
    ],
)
def test_each_policy_field_falls_back_on_its_own(field, team_value, default_value, expected_team, expected_other):
    text = f"[default.policy]\n{field} = {default_value}\n\n[ops.policy]\n{field} = {team_value}\n"
    cfg = config(text)
    team = cfg.resolve(incident(teams=[Ref(name="ops")]))
    other = cfg.resolve(incident(teams=[Ref(name="growth")]))
    assert getattr(team.policy, field) == expected_team
    assert getattr(other.policy, field) == expected_other
    # Every other field keeps the built-in default for both.
    builtin = {
        "full_at_or_above": Severity.SEV2,
        "full_if_high_urgency": True,
        "full_after_minutes": 60,
        "full_if_flagged": True,
        "otherwise": PolicyOutcome.LIGHTWEIGHT,
    }
    for name, value in builtin.items():
        if name != field:
            assert getattr(team.policy, name) == value and getattr(other.policy, name) == value


# --- errors ----------------------------------------------------------------------------------


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line that starts with `needle` (after indentation)."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip().startswith(needle)]
    assert len(found) == 1, (needle, found)
    return found[0]


def error_for(text: str) -> str:
    with pytest.raises(TeamsFileError) as info:
        config(text)
    message = str(info.value)
    assert FILENAME in message
    return message


def reported_line(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    assert match, message
    return int(match.group(1))


@pytest.mark.parametrize(
    "old, new, key",
    [
        # unknown key in a team table
        ('template = "full"', 'template = "full"\nlangauge = "en"', "langauge"),
        # bad language value
        ('language = "en"', 'language = "fr"', "language"),
        # bad time zone in the team keyed by id
        ('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus_Mons"', "timezone"),
        # bad time zone in [default]
        ('timezone = "Asia/Shanghai"', 'timezone = "Asia/Atlantis"', "timezone"),
        # unknown key in [default.policy]
        ("full_after_minutes = 30", "full_after_minutez = 30", "full_after_minutez"),
        # bad policy values
        ('otherwise = "skip"', 'otherwise = "sometimes"', "otherwise"),
        ("full_after_minutes = 30", "full_after_minutes = -5", "full_after_minutes"),
        ('full_at_or_above = "SEV1"', 'full_at_or_above = "SEV9"', "full_at_or_above"),
        # wrong type in the services mapping
        ('owners = ["alice@example.com", "bob@example.com"]', 'owners = "alice@example.com"', "owners"),
    ],
)
def test_invalid_key_or_value_names_the_key_and_its_line(old, new, key):
    assert TEAMS_TOML.count(old) == 1
    text = TEAMS_TOML.replace(old, new)
    message = error_for(text)
    assert key in message
    assert reported_line(message) == line_of(text, new.splitlines()[-1])


def test_team_that_is_not_a_table():
    text = "oops = 1\n" + TEAMS_TOML
    message = error_for(text)
    assert "oops" in message
    assert reported_line(message) == 1


def test_bad_toml_syntax_names_the_line():
    text = TEAMS_TOML.replace('timezone = "Europe/Berlin"', 'timezone "Europe/Berlin"')
    message = error_for(text)
    assert reported_line(message) == line_of(text, 'timezone "Europe/Berlin"')


def test_bad_toml_syntax_names_the_key():
    text = TEAMS_TOML.replace('timezone = "Europe/Berlin"', 'timezone "Europe/Berlin"')
    assert "timezone" in error_for(text)


def test_error_in_quoted_services_table_names_its_line():
    text = TEAMS_TOML.replace('team = "payments"', 'team = "payments"\nname = "API"')
    message = error_for(text)
    assert "name" in message
    assert reported_line(message) == line_of(text, 'name = "API"')


def test_error_in_table_whose_header_has_a_comment_names_its_line():
    text = TEAMS_TOML.replace("[payments]\n", "[payments]  # the payments squad\n").replace(
        'language = "en"', 'language = "fr"'
    )
    message = error_for(text)
    assert reported_line(message) == line_of(text, 'language = "fr"')


def test_the_people_the_file_knows_are_every_email_it_names():
    cfg = config(
        TEAMS_TOML
        + """
[people]
PABC123 = "Carol@Example.com"
"Dan Responder" = "dan@example.com"

[slack_users]
"erin@example.com" = "U024BE7LH"
"""
    )
    known = cfg.known_people()
    assert {"alice@example.com", "bob@example.com", "carol@example.com", "dan@example.com"} <= known
    assert "erin@example.com" in known
    assert "pabc123" not in known and "dan responder" not in known  # keys of [people] are ids and names
