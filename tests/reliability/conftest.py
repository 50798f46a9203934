"""The reliability proofs (issue 11): outages, crashes, storms and hostile input, selected with `-m reliability`.

The marker is registered here rather than in pyproject.toml so the folder carries its own selection;
`--strict-markers` accepts it because pytest loads this file before collecting the modules beside it.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reliability: the issue-11 proofs (outage, crash, storm, hostile input); `-m reliability` runs them"
    )
