"""Real parts for the tests: SQLite and PostgreSQL stores, the Temporal time-skipping and dev servers."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from postmortem.app.temporal import ensure_search_attributes
from postmortem.store.store import Store
from tests.support import binary

POSTGRES_URL = os.environ.get("POSTMORTEM_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _postgres_required() -> bool:
    return bool(os.environ.get("CI")) or bool(os.environ.get("POSTMORTEM_REQUIRE_POSTGRES"))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """PostgreSQL must be there in CI; a developer without one sees the store tests skipped, loudly."""
    url = make_url(POSTGRES_URL)
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=5).close()
    except OSError as exc:
        message = f"PostgreSQL is unreachable at {url.host}:{url.port or 5432}: {exc}"
        if _postgres_required():
            pytest.fail(message)
        pytest.skip(message + " (CI=1 makes this a failure)")
    return POSTGRES_URL


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def any_store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    """The same store tests on both databases."""
    if request.param == "sqlite":
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
        yield store
        await store.close()
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"pm_test_{uuid.uuid4().hex[:12]}"
    store = await Store.open(url, schema=schema)
    try:
        yield store
    finally:
        await store.close()
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.close()


@pytest_asyncio.fixture
async def sqlite_store(tmp_path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    yield store
    await store.close()


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary("temporal-test-server")
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own: skipping hours or days must not wait on the timers
    and retrying activities other tests left on the shared one (the sleep's RPC then times out)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary("temporal-test-server")
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (in memory), shared by the API tests."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=binary("temporal"), ui=False
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()
