"""docker-compose.yml is a valid Compose file whose every POSTMORTEM_* variable is one the settings know.

Docker cannot run here, so the file is proven three ways without it: against the Compose
Specification's own JSON schema (tests/fixtures/compose-spec.json), variable by variable against the
settings' aliases, and as a whole by `postmortem check-config` run with the environment the api and
worker services get (defaults of `${…:-…}` filled in, required `${…:?…}` given a value, as compose does).
tests/e2e/test_topology.py starts the services' `command`s themselves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import pytest

from postmortem.app.settings import Settings
from postmortem.config import Section
from tests.compose_file import REPO, compose, dotenv_example, environment, interpolate
from tests.fixtures import FIXTURES

OURS = ("migrate", "api", "worker")


def known_variables() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        section = field.annotation
        assert isinstance(section, type) and issubclass(section, Section)
        names.update(section.variable(name) for name in section.model_fields)
    return names


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((FIXTURES / "compose-spec.json").read_text())
    validator = jsonschema_rs.validator_for(schema)
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_schema_check_catches_a_broken_file() -> None:
    """The validation above can fail: a typo'd key and a wrong type are both reported."""
    schema = json.loads((FIXTURES / "compose-spec.json").read_text())
    broken = compose()
    broken["services"]["api"]["deploy"] = {"replica": 2}
    broken["services"]["worker"]["ports"] = 8000
    assert len(list(jsonschema_rs.validator_for(schema).iter_errors(broken))) >= 2


def test_every_postmortem_variable_passed_is_a_setting() -> None:
    known = known_variables()
    for name in OURS:
        service = compose()["services"][name]
        passed = [variable for variable in service["environment"] if variable.startswith("POSTMORTEM_")]
        unknown = sorted(set(passed) - known)
        assert unknown == [], f"{name} passes variables no setting reads: {unknown}"
    example = {name for name in dotenv_example() if name.startswith("POSTMORTEM_")}
    assert sorted(example - known - {"POSTMORTEM_DB_PASSWORD"}) == []


def test_the_topology_the_issue_asks_for() -> None:
    services = compose()["services"]
    assert {"postgresql", "temporal-admin-tools", "temporal", "temporal-create-namespace", "temporal-ui"} <= set(
        services
    )
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    for name in ("api", "worker"):
        service = services[name]
        assert service["deploy"]["replicas"] == 2
        assert service["command"] == ["postmortem", name]
        assert service["environment"]["POSTMORTEM_MIGRATE_ON_START"] == "false"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in service
    assert services["migrate"]["command"] == ["postmortem", "migrate"]
    worker = services["worker"]
    passed = set(worker["environment"])
    assert {
        "POSTMORTEM_LOG_FORMAT",
        "POSTMORTEM_WORKER_METRICS_ADDRESS",
        "POSTMORTEM_WORKER_SHUTDOWN_SECONDS",
    } <= passed
    assert {v for v in passed if v.startswith("POSTMORTEM_JSM_")} == {
        "POSTMORTEM_JSM_WEBHOOK_TOKEN",
        "POSTMORTEM_JSM_API_URL",
        "POSTMORTEM_JSM_CLOUD_ID",
        "POSTMORTEM_JSM_EMAIL",
        "POSTMORTEM_JSM_API_TOKEN",
    }
    grace = int(str(worker["stop_grace_period"]).removesuffix("s"))
    assert grace > float(interpolate(worker["environment"]["POSTMORTEM_WORKER_SHUTDOWN_SECONDS"], {}))


def test_no_secret_is_written_in_the_compose_file() -> None:
    """Passwords and tokens come from .env (uncommitted; .env.example is the committed template)."""
    assert ".env" in (REPO / ".gitignore").read_text().split()
    for service in compose()["services"].values():
        for name, value in dict(service.get("environment") or {}).items():
            if re.search(r"PASSWORD|PWD|SECRET|TOKEN", name):
                assert str(value).startswith("${"), f"{name} is written in the compose file"
    url = compose()["services"]["api"]["environment"]["POSTMORTEM_DATABASE_URL"]
    assert "${POSTMORTEM_DB_PASSWORD" in url


@pytest.mark.parametrize("name", OURS)
def test_the_services_environment_is_accepted_by_check_config(name: str, tmp_path: Path) -> None:
    """What compose hands the container, with .env.example's values, is a valid configuration."""
    # /data exists in the image, not here
    passed = environment(name, dotenv_example(), overrides={"POSTMORTEM_DATA_DIR": str(tmp_path)})
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POSTMORTEM_", "TEMPORAL_"))}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "postmortem"), "check-config"],
        env={**clean, **passed},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout
