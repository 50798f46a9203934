"""On SQLite, the inbox moves into its own database file (attached as `inbox` to every connection).

SQLite takes one writer per file: a webhook's ack waited behind the worker's writes of reports. The
table, its indexes and its rows (ids and AUTOINCREMENT sequence kept) move as they are; queries name
no schema and find it there. PostgreSQL locks rows, not files: nothing changes there.

Revision ID: 0017
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.engine import Connection

from postmortem.store.database import INBOX_SCHEMA

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLE = "inbox_entries"


def _attached(connection: Connection) -> bool:
    return connection.dialect.name == "sqlite" and any(
        row[1] == INBOX_SCHEMA for row in connection.exec_driver_sql("PRAGMA database_list")
    )


def _move(connection: Connection, source: str, target: str) -> None:
    """Recreate the table (and its indexes) from its own DDL in `target`, copy the rows, drop it in `source`."""
    rows = connection.exec_driver_sql(
        f"SELECT type, name, sql FROM {source}.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
        "ORDER BY type = 'index'",
        (TABLE,),
    ).all()
    if not rows:
        return  # already there
    for kind, name, sql in rows:
        prefix = f"CREATE TABLE {TABLE}" if kind == "table" else f"CREATE INDEX {name}"
        unique = f"CREATE UNIQUE INDEX {name}"
        if sql.startswith(unique):
            prefix = unique
        if not sql.startswith(prefix):
            raise RuntimeError(f"unexpected DDL for {name}: {sql[:80]}")
        connection.exec_driver_sql(
            prefix.replace(name if kind == "index" else TABLE, f"{target}.{name}", 1) + sql[len(prefix) :]
        )
    connection.exec_driver_sql(f"INSERT INTO {target}.{TABLE} SELECT * FROM {source}.{TABLE}")
    # AUTOINCREMENT's high-water mark too: ids of pruned entries are never handed out again.
    connection.exec_driver_sql(f"DELETE FROM {target}.sqlite_sequence WHERE name = ?", (TABLE,))
    connection.exec_driver_sql(
        f"INSERT INTO {target}.sqlite_sequence (name, seq) SELECT name, seq FROM {source}.sqlite_sequence WHERE name = ?",
        (TABLE,),
    )
    connection.exec_driver_sql(f"DROP TABLE {source}.{TABLE}")


def upgrade() -> None:
    connection = op.get_bind()
    if _attached(connection):
        _move(connection, "main", INBOX_SCHEMA)


def downgrade() -> None:
    connection = op.get_bind()
    if _attached(connection):
        _move(connection, INBOX_SCHEMA, "main")
