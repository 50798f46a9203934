"""The lock files install what pyproject.toml asks for: a range edited without `bash scripts/lock.sh` fails here."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def _pins(lock: str) -> dict[str, str]:
    text = (REPO / lock).read_text(encoding="utf-8")
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def _wanted(*extras: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def _unmet(lock: str, wanted: list[Requirement]) -> list[str]:
    pins = _pins(lock)
    unmet = []
    for requirement in wanted:
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{requirement} (locked: {version})")
    return unmet


@pytest.mark.parametrize(("lock", "extras"), [("requirements.txt", ()), ("requirements-dev.txt", ("test", "dev"))])
def test_every_dependency_is_locked_within_its_range(lock: str, extras: tuple[str, ...]) -> None:
    assert _unmet(lock, _wanted(*extras)) == []


def test_every_pin_is_hashed() -> None:
    for lock in ("requirements.txt", "requirements-dev.txt"):
        blocks = re.split(r"\n(?=[A-Za-z0-9])", (REPO / lock).read_text(encoding="utf-8"))
        unhashed = [block.split()[0] for block in blocks if PIN.match(block) and "--hash=sha256:" not in block]
        assert unhashed == [], lock


def test_a_range_the_lock_does_not_meet_is_named() -> None:
    assert _unmet("requirements.txt", [Requirement("fastapi<0.1")]) == [
        f"fastapi<0.1 (locked: {_pins('requirements.txt')['fastapi']})"
    ]
