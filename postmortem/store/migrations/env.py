"""Alembic environment: migrations always run on a connection the application hands over."""

from __future__ import annotations

from alembic import context

from postmortem.store.tables import Base, mapped_name

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `postmortem migrate` (or at service start-up), not the alembic CLI")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, include_name=mapped_name)
with context.begin_transaction():
    context.run_migrations()
