"""`postmortem migrate` runs the migrations once; a process with POSTMORTEM_MIGRATE_ON_START=false never
migrates and refuses a schema that is not the code's, saying what to run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import inspect

from postmortem.store.database import SchemaNotCurrent, create_engine
from postmortem.store.store import Store

POSTMORTEM = str(Path(sys.executable).parent / "postmortem")


async def run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POSTMORTEM_", "TEMPORAL_"))}
    return await asyncio.to_thread(
        subprocess.run,
        [POSTMORTEM, command],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    """A URL (and PostgreSQL schema) with no tables yet."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", None
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"pm_migrate_{uuid.uuid4().hex[:12]}"
    yield url, schema
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await connection.close()


async def tables(url: str, schema: str | None) -> set[str]:
    engine = create_engine(url, schema=schema)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names(schema=schema)))
    finally:
        await engine.dispose()


def environment(url: str, schema: str | None, data_dir: Path, migrate_on_start: str) -> dict[str, str]:
    env = {"POSTMORTEM_DATABASE_URL": url, "POSTMORTEM_DATA_DIR": str(data_dir)}
    env["POSTMORTEM_MIGRATE_ON_START"] = migrate_on_start
    if schema:
        env["POSTMORTEM_DATABASE_SCHEMA"] = schema
    return env


async def test_a_store_that_may_not_migrate_refuses_an_empty_database(database: tuple[str, str | None]) -> None:
    url, schema = database
    with pytest.raises(SchemaNotCurrent, match="run `postmortem migrate`"):
        await Store.open(url, schema=schema, migrate_schema=False)
    assert "postmortems" not in await tables(url, schema)  # it looked, it did not create


async def test_replicas_start_only_after_postmortem_migrate(database: tuple[str, str | None], tmp_path: Path) -> None:
    url, schema = database
    replica = environment(url, schema, tmp_path, "false")
    refused = await run("worker", replica)  # it stops at the schema check, before reaching for Temporal
    assert refused.returncode == 2, refused.stderr
    assert "run `postmortem migrate` once" in refused.stderr
    assert "postmortems" not in await tables(url, schema)

    migrated = await run("migrate", replica)  # `migrate` migrates whatever the setting says
    assert migrated.returncode == 0, migrated.stderr
    assert "database schema is up to date" in migrated.stdout
    assert "postmortems" in await tables(url, schema)

    store = await Store.open(url, schema=schema, migrate_schema=False)  # what a replica now does
    await store.ping()
    await store.close()
