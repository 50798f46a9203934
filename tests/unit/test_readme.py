"""The README's examples are contracts: its teams file must load as documented."""

from __future__ import annotations

import re
from datetime import time

from postmortem.app.settings import variables
from postmortem.incident.teams_file import TeamsFileError, parse_teams
from postmortem.models import Incident, Language, Person, PolicyOutcome, Ref, Severity, Source
from tests.support import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readme_teams_example_is_valid_and_falls_back() -> None:
    [example] = re.findall(r"```toml\n(.*?)```", README, flags=re.S)
    teams = parse_teams(example, "README teams example")
    payments = teams.resolve(
        Incident(source=Source.PAGERDUTY, id="1", title="t", severity=Severity.SEV3, services=[Ref(name="API Service")])
    )
    assert payments.team == "Payments" and payments.timezone == "America/New_York"
    assert payments.policy.full_after_minutes == 30 and payments.policy.full_at_or_above == Severity.SEV2
    assert payments.owners == ["alice@example.com", "bob@example.com"]
    assert payments.meeting.working_hours == (time(9, 0), time(17, 0)) and payments.meeting.working_days == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert (payments.meeting.meeting_minutes, payments.meeting.sev1_meeting_minutes) == (60, 90)
    assert payments.organizer == "payments-sre@example.com" and payments.attendees == ["payments-leads@example.com"]
    assert payments.alert_matchers == [{"job": "api-gateway"}]
    responders = teams.resolve(
        Incident(
            source=Source.PAGERDUTY,
            id="9",
            title="t",
            severity=Severity.SEV1,
            responders=[
                Person(id="PJ0LVEB", name="PIG 208"),
                Person(name="laura haley"),
                Person(name="Unknown Person"),
            ],
        )
    )
    assert [a.email for a in responders.responders] == ["pig@example.com", "laura@example.com"]
    china = teams.resolve(
        Incident(
            source=Source.PAGERDUTY,
            id="2",
            title="t",
            severity=Severity.SEV3,
            teams=[Ref(id="PFCVPS0", name="Engineering")],
        )
    )
    assert (china.team, china.language) == ("SRE China", Language.ZH)
    search = teams.resolve(
        Incident(source=Source.OPSGENIE, id="3", title="t", severity=Severity.SEV4, teams=[Ref(name="search")])
    )
    assert search.policy.otherwise == PolicyOutcome.SKIP and search.timezone == "Europe/Berlin"


def test_every_setting_is_documented() -> None:
    for variable in variables():
        assert f"`{variable}`" in README, variable


def test_the_documented_teams_file_errors_are_what_users_see() -> None:
    [example] = re.findall(r"```toml\n(.*?)```", README, flags=re.S)
    documented = re.findall(r"`(teams\.toml, line \d+: [^`]+)`", README)
    assert len(documented) == 2
    misplaced = example.replace("[search.policy]\notherwise", "[search]\notherwise")
    wrong_value = example.replace("full_after_minutes = 30", 'otherwise = "never"')
    for broken, expected in zip((wrong_value, misplaced), documented, strict=True):
        try:
            parse_teams(broken, "teams.toml")
        except TeamsFileError as exc:
            assert str(exc) == expected
        else:
            raise AssertionError("the broken example was accepted")
