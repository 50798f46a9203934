"""Where the shared webhook fixtures live: `shared/fixtures` beside the repository checkout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]  # this file is <repo>/tests/fixtures_path.py
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


def fixture_bytes(name: str) -> bytes:
    path = FIXTURES / name
    if not path.is_file():
        raise FileNotFoundError(f"fixture {name!r} not found in {FIXTURES} (expected shared/ beside the repo)")
    return path.read_bytes()


def load_fixture(name: str) -> Any:
    """A fresh copy on every call, so tests may modify it."""
    return json.loads(fixture_bytes(name))
