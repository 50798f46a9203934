"""docker-compose.yml read as compose reads it: its services, and `${…}` interpolated from a `.env`.

Shared by tests/unit/test_compose.py (the file is valid and names only our settings) and
tests/e2e/test_topology.py (which starts the services' own commands without Docker).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.support import REPO

COMPOSE = REPO / "docker-compose.yml"
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def service(name: str) -> dict[str, Any]:
    found = compose()["services"][name]
    assert isinstance(found, dict)
    return found


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` with the values of a `.env`."""

    def one(match: re.Match[str]) -> str:
        name, op = match["name"], match["op"]
        if given.get(name):
            return given[name]
        if op == ":?":
            raise AssertionError(f"{name} is required: {match['arg']}")
        return match["arg"] if op == ":-" else ""

    return INTERPOLATION.sub(one, value)


def dotenv_example() -> dict[str, str]:
    pairs = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def environment(name: str, given: dict[str, str], *, overrides: dict[str, str]) -> dict[str, str]:
    """The variables compose hands service `name`'s containers, with `overrides` in place of some."""
    env = {
        variable: interpolate(str(value), given)
        for variable, value in service(name)["environment"].items()
        if variable not in overrides
    }
    return {**env, **overrides}
