"""A user's clone has nothing beside it: no file of the project may reach outside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import FIXTURES
from tests.support import REPO

# Spelled in pieces so this file does not match itself.
FORBIDDEN = ("../" + "shared", "shared" + "/fixtures")
CHECKED = ("tests", "bench", "postmortem", "workflows", "activities", "webhooks", "integrations", "scripts", ".ci")
TEXT_SUFFIXES = {".py", ".sh", ".toml", ".txt", ".md", ".cfg", ".ini", ".yml", ".yaml", ".json", ".j2", ""}


def _project_files() -> list[Path]:
    files = [REPO / "pyproject.toml", REPO / "Dockerfile", REPO / "docker-compose.yml"]
    for folder in CHECKED:
        files += [p for p in (REPO / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return [p for p in files if p.suffix in TEXT_SUFFIXES and p.exists()]


def _mentions(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return [needle for needle in FORBIDDEN if needle in text]


def test_no_project_file_reads_outside_the_repository() -> None:
    offenders = {str(path.relative_to(REPO)): found for path in _project_files() if (found := _mentions(path))}
    assert offenders == {}


def test_the_check_sees_a_forbidden_mention(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        f'PATH = REPO.parent / "{FORBIDDEN[0][3:]}" / "fixtures" / "x.json"  # {FORBIDDEN[1]}\n', encoding="utf-8"
    )
    assert _mentions(probe) == [FORBIDDEN[1]]


@pytest.mark.parametrize("payload", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_fixture_says_where_it_came_from_and_its_licence(payload: str) -> None:
    source = FIXTURES / payload.replace(".json", ".source.txt")
    assert source.is_file(), f"{payload} has no {source.name}"
    assert "licen" in source.read_text(encoding="utf-8").lower(), f"{source.name} names no licence"
