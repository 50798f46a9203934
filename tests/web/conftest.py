"""The pages over the same in-process app as tests/api (SQLite store, dev Temporal, a worker)."""

from __future__ import annotations

from tests.api.conftest import api  # noqa: F401  (the fixture)
