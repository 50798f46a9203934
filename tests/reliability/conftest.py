"""The `postmortem dev` the outage, crash and storm proofs drive: one per test, on its own folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dev_service import running
from tests.reliability.service import DevService


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DevService]:
    with running(DevService(tmp_path)) as started:
        yield started
