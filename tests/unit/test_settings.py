"""Settings in sections, each field still set by the flat POSTMORTEM_* variable the README documents."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from postmortem.app.cli import app
from postmortem.app.settings import Settings, variables
from postmortem.config import (
    HttpSettings,
    PagerDutySettings,
    ServerSettings,
    SmtpSettings,
    StoreSettings,
    TicketsSettings,
    reveal,
)
from tests.support import REPO

SECRET_VARIABLE = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY|DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only what a test sets: a POSTMORTEM_* variable of the shell running the tests must not count."""
    for name in [name for name in os.environ if name.upper().startswith("POSTMORTEM_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_a_section_reads_its_flat_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMORTEM_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("POSTMORTEM_SMTP_PORT", "2525")
    monkeypatch.setenv("POSTMORTEM_SMTP_STARTTLS", "false")
    monkeypatch.setenv("POSTMORTEM_SMTP_FROM", "pm@example.com")
    monkeypatch.setenv("POSTMORTEM_HTTP_TIMEOUT_SECONDS", "3.5")
    monkeypatch.setenv("POSTMORTEM_PAGERDUTY_API_URL", "https://api.eu.pagerduty.com/")
    monkeypatch.setenv("POSTMORTEM_ALERTMANAGER_SERVICE_LABELS", "service, app ,")
    monkeypatch.setenv("POSTMORTEM_FOLLOW_UP_DAYS", "90,30,60")
    monkeypatch.setenv("POSTMORTEM_TRACKER", "jira")
    monkeypatch.setenv("POSTMORTEM_JIRA_PROJECT", "OPS")  # a section inside a section
    monkeypatch.setenv("postmortem_temporal_task_queue", "lower-case-works-too")

    settings = Settings()

    assert settings.smtp == SmtpSettings(host="mail.example.com", port=2525, starttls=False, sender="pm@example.com")
    assert settings.http.timeout_seconds == 3.5
    assert settings.pagerduty.api_url == "https://api.eu.pagerduty.com"
    assert settings.alertmanager.service_labels == ["service", "app"]
    assert settings.follow_up.days == [30, 60, 90]
    assert (settings.tickets.tracker, settings.tickets.jira.project) == ("jira", "OPS")
    assert settings.temporal.task_queue == "lower-case-works-too"


def test_without_variables_the_documented_defaults_hold() -> None:
    settings = Settings()
    assert settings.server.resolved_public_url == "http://127.0.0.1:8000"
    assert settings.store.resolved_database_url == f"sqlite+aiosqlite:///{(Path('data') / 'postmortem.db').resolve()}"
    assert (settings.smtp.port, settings.smtp.sender, settings.http.timeout_seconds) == (
        587,
        "postmortem@localhost",
        15,
    )
    assert settings.alertmanager.service_labels == ["service"] and settings.follow_up.days == [30, 60, 90]
    assert ServerSettings(public_url="https://pm.example.com/").resolved_public_url == "https://pm.example.com"
    assert ServerSettings(host="0.0.0.0", port=9000).resolved_public_url == "http://0.0.0.0:9000"


def test_what_is_given_wins_over_the_environment_section_by_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMORTEM_DATA_DIR", "/from/the/environment")
    monkeypatch.setenv("POSTMORTEM_SMTP_HOST", "mail.example.com")
    settings = Settings(store=StoreSettings(data_dir=Path("/given")))
    assert settings.store.data_dir == Path("/given")
    assert settings.smtp.host == "mail.example.com"


@pytest.mark.parametrize("variable", sorted(v for v in variables() if SECRET_VARIABLE.search(v)))
def test_secrets_are_secret_strings_never_shown(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "postgres://user:hunter2@db/pm" if variable.endswith("DATABASE_URL") else "hunter2")
    settings = Settings()
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert "hunter2" not in settings.model_dump_json()
    secrets = [value for value in _values(settings) if isinstance(value, SecretStr)]
    assert any("hunter2" in (reveal(secret) or "") for secret in secrets), f"{variable} is not a SecretStr"


def test_a_section_shows_no_secret_in_its_repr() -> None:
    pagerduty = PagerDutySettings(api_token=SecretStr("pd-token"), webhook_secrets=["one", "two"])
    assert "pd-token" not in repr(pagerduty) and "one" not in repr(pagerduty)
    assert [secret.get_secret_value() for secret in pagerduty.webhook_secrets] == ["one", "two"]
    assert StoreSettings(database_url=SecretStr("postgres://u:p@h/db")).resolved_database_url == (
        "postgresql+asyncpg://u:p@h/db"
    )


@pytest.mark.parametrize(
    "variable",
    [
        "POSTMORTEM_PAGERDUTY_API_URL",
        "POSTMORTEM_OPSGENIE_API_URL",
        "POSTMORTEM_SLACK_API_URL",
        "POSTMORTEM_CALDAV_URL",
        "POSTMORTEM_JIRA_URL",
        "POSTMORTEM_GITHUB_API_URL",
        "POSTMORTEM_LINEAR_API_URL",
    ],
)
def test_a_bad_base_url_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "api.example.com")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert variable in str(raised.value)
    assert "'api.example.com' is not an http(s) base URL" in str(raised.value)


def test_the_other_validators_keep_their_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMORTEM_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("POSTMORTEM_VIDEO_URL_TEMPLATE", "https://meet.example.com/{room}")
    monkeypatch.setenv("POSTMORTEM_SMTP_PORT", "smtp")
    with pytest.raises(ValidationError) as raised:
        Settings()
    text = str(raised.value)
    assert "POSTMORTEM_TIMEZONE" in text and "unknown time zone 'Mars/Olympus'" in text
    assert "POSTMORTEM_VIDEO_URL_TEMPLATE" in text and "may use {postmortem_id} and {uid} only" in text
    assert "POSTMORTEM_SMTP_PORT" in text  # pydantic's own errors name the variable too


def test_the_command_line_names_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMORTEM_GITHUB_API_URL", "github.example.com")
    result = CliRunner().invoke(app, ["check-config"])
    assert result.exit_code == 2
    assert "invalid setting" in result.output and "POSTMORTEM_GITHUB_API_URL" in result.output


def test_a_misspelt_field_is_refused_in_code() -> None:
    with pytest.raises(ValidationError, match="hots"):
        SmtpSettings(hots="mail.example.com")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="smpt"):
        Settings(smpt=SmtpSettings())  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        HttpSettings(timeout_seconds=0)
    assert TicketsSettings().jira.url is None


def test_the_readme_table_lists_exactly_the_variables() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `POSTMORTEM_")]
    documented = {name for row in rows for name in re.findall(r"`(POSTMORTEM_[A-Z_]+)`", row.split(" | ")[0])}
    assert documented == set(variables())


def _values(model: object) -> list[object]:
    """Every leaf value of a settings object (lists opened)."""
    found: list[object] = []
    for name in type(model).model_fields:  # type: ignore[attr-defined]
        value = getattr(model, name)
        if hasattr(type(value), "model_fields"):
            found += _values(value)
        elif isinstance(value, list):
            found += value
        else:
            found.append(value)
    return found


def test_the_ticket_label_is_one_word_of_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().tickets.label == "postmortem"
    monkeypatch.setenv("POSTMORTEM_TICKETS_LABEL", "incident-review")
    assert Settings().tickets.label == "incident-review"
    for bad in ("two words", "a,b", "", "x" * 51):  # GitHub's labels filter is comma-separated
        with pytest.raises(ValidationError):
            TicketsSettings(label=bad)


def test_redaction_patterns_take_a_json_array_for_commas_and_refuse_a_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split at every comma, `INC-\\d{3,5}` became two broken patterns that redacted the wrong text."""
    monkeypatch.setenv("POSTMORTEM_PUBLIC_REDACT_PATTERNS", r"INC-\d+, (?i)project falcon")
    assert Settings().report.public_redact_patterns == [r"INC-\d+", "(?i)project falcon"]
    monkeypatch.setenv("POSTMORTEM_PUBLIC_REDACT_PATTERNS", r'["INC-\\d{3,5}", "falcon"]')
    assert Settings().report.public_redact_patterns == [r"INC-\d{3,5}", "falcon"]
    monkeypatch.setenv("POSTMORTEM_PUBLIC_REDACT_PATTERNS", "db-(primary")
    with pytest.raises(
        ValidationError, match=r"POSTMORTEM_PUBLIC_REDACT_PATTERNS[\s\S]*'db-\(primary' is not a regular"
    ):
        Settings()
