"""Engine, sessions and migrations, for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# On SQLite the inbox has a database file of its own, attached to every connection under this name.
INBOX_SCHEMA = "inbox"


def inbox_file(database: str) -> Path:
    """`data/postmortem.db` → `data/postmortem-inbox.db`: beside the store, named for it."""
    path = Path(database)
    return path.with_name(f"{path.stem}-inbox{path.suffix or '.db'}")


def create_engine(url: str, *, schema: str | None = None, **kwargs: Any) -> AsyncEngine:
    """`schema` (PostgreSQL only) keeps our tables in their own schema of a shared database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        inbox = inbox_file(database) if database and database != ":memory:" else None

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if inbox is not None:
                # SQLite takes one writer per database file. The worker writes reports all the time; with
                # the inbox in the same file a webhook's ack waited for the lock behind it (p99 2.7–13 s
                # while a burst was drafted). In its own file the ack only ever waits for this process's
                # relay. Unqualified names find the table here once main has none (migration 0017).
                cursor.execute(f"ATTACH DATABASE ? AS {INBOX_SCHEMA}", (str(inbox),))
                cursor.execute(f"PRAGMA {INBOX_SCHEMA}.journal_mode=WAL")
                cursor.execute(f"PRAGMA {INBOX_SCHEMA}.synchronous=NORMAL")
            # WAL lets the API read while the worker writes; foreign keys make deletes cascade.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # With the API and the worker in two processes, a flush per commit made each wait for the
            # other's disk sync. In WAL mode NORMAL still survives any process crash (SIGKILL); only a
            # power loss of the machine may drop the last commits. Production runs on PostgreSQL.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if schema:
        if parsed.get_backend_name() != "postgresql":
            raise ValueError("POSTMORTEM_DATABASE_SCHEMA is for PostgreSQL only")
        if not schema.replace("_", "").isalnum():
            raise ValueError(f"invalid schema name {schema!r}: use letters, digits and underscores")
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        engine = create_async_engine(url, pool_pre_ping=True, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _ensure_schema(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class SchemaNotCurrent(RuntimeError):
    """The database is not at the code's revision and this process may not migrate it."""


def _current_and_head(connection: Connection) -> tuple[str | None, str | None]:
    current = MigrationContext.configure(connection).get_current_revision()
    return current, ScriptDirectory.from_config(alembic_config()).get_current_head()


async def check_schema(engine: AsyncEngine) -> None:
    """Refuse to run on a schema another revision of the code left (or none): say what to run instead.

    Replicas that do not migrate (POSTMORTEM_MIGRATE_ON_START=false) would otherwise fail on their
    first query with a missing table or column, far from the cause.
    """
    async with engine.connect() as connection:
        current, head = await connection.run_sync(_current_and_head)
    if current != head:
        raise SchemaNotCurrent(
            f"the database schema is at revision {current or '(none)'} and this version needs {head}: "
            "run `postmortem migrate` once (or set POSTMORTEM_MIGRATE_ON_START=true)"
        )


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to run at every start."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "head")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
