"""On SQLite the inbox has its own database file, so a webhook's ack never waits for the worker's writes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection

from postmortem.store.database import alembic_config, create_engine, inbox_file
from postmortem.store.inbox import NewDelivery
from postmortem.store.store import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def delivery(incident: str) -> NewDelivery:
    return NewDelivery(
        source="pagerduty",
        event_id=f"E-{incident}",
        delivery_id=None,
        incident_key=f"pagerduty:{incident}",
        delivery={"kind": "incident_event", "event": {"incident": incident}},
        incident_raw=None,
    )


def test_the_inbox_file_is_named_for_the_store() -> None:
    assert inbox_file("/srv/data/postmortem.db") == Path("/srv/data/postmortem-inbox.db")
    assert inbox_file("store") == Path("store-inbox.db")


async def test_an_ack_commits_while_another_process_holds_the_reports_write_lock(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'postmortem.db'}")
    # Another process (the worker) in the middle of a write transaction on the reports' file.
    worker = sqlite3.connect(tmp_path / "postmortem.db", isolation_level=None)
    worker.execute("BEGIN IMMEDIATE")
    worker.execute("UPDATE service_secrets SET value = value")
    try:
        started = time.monotonic()
        receipts = await asyncio.wait_for(store.inbox.add(b"{}", {}, [delivery("PLOCK")], T0), timeout=5)
        waited = time.monotonic() - started
        # ...and the reports' file itself is still locked: a write there times out.
        probe = sqlite3.connect(tmp_path / "postmortem.db", timeout=0.1)
        try:
            probe.execute("BEGIN IMMEDIATE")
            locked = False
        except sqlite3.OperationalError as exc:
            locked = "locked" in str(exc)
        finally:
            probe.close()
    finally:
        worker.execute("ROLLBACK")
        worker.close()
        await store.close()
    assert locked
    assert not receipts[0].duplicate and waited < 5
    inbox = sqlite3.connect(inbox_file(str(tmp_path / "postmortem.db")))
    assert inbox.execute("SELECT incident_key FROM inbox_entries").fetchall() == [("pagerduty:PLOCK",)]


async def test_upgrading_moves_the_entries_with_their_ids(tmp_path: Path) -> None:
    """A store from before the move (revision 0016): entries, ids and the AUTOINCREMENT mark carry over."""
    database = tmp_path / "postmortem.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")

    def upgrade_to(revision: str) -> Callable[[Connection], None]:
        def run(connection: Connection) -> None:
            command.upgrade(alembic_config(connection), revision)

        return run

    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to("0016"))
    await engine.dispose()
    old = sqlite3.connect(database, isolation_level=None)
    for number in (1, 2, 3):
        old.execute(
            "INSERT INTO inbox_entries (id, source, incident_key, body, headers, delivery, received_at, state, "
            "attempts, next_attempt_at) VALUES (?, 'pagerduty', ?, x'7b7d', '{}', '{}', ?, 'done', 1, ?)",
            (number, f"pagerduty:P{number}", T0.isoformat(), T0.isoformat()),
        )
    old.execute("DELETE FROM inbox_entries WHERE id = 3")  # pruned: id 3 is never handed out again
    old.close()

    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        [receipt] = await store.inbox.add(b"{}", {}, [delivery("PNEW")], T0)
        assert receipt.entry.id == 4
        assert (await store.inbox.get(2)).incident_key == "pagerduty:P2"
    finally:
        await store.close()
    main = sqlite3.connect(database)
    assert main.execute("SELECT name FROM sqlite_master WHERE name = 'inbox_entries'").fetchall() == []
    moved = sqlite3.connect(inbox_file(str(database)))
    assert [row[0] for row in moved.execute("SELECT id FROM inbox_entries ORDER BY id")] == [1, 2, 4]
