"""Tickets on action items, and the follow-up checks of published reports.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("action_items") as batch:
        batch.add_column(sa.Column("ticket_key", sa.String(100), nullable=True))
        batch.add_column(sa.Column("ticket_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ticket_tracker", sa.String(16), nullable=True))
        batch.add_column(sa.Column("completed_at", UTCDateTime(), nullable=True))
    op.create_table(
        "follow_ups",
        sa.Column("postmortem_id", sa.String(200), primary_key=True),
        sa.Column("day", sa.Integer(), primary_key=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("follow_ups")
    with op.batch_alter_table("action_items") as batch:
        for column in ("completed_at", "ticket_tracker", "ticket_url", "ticket_key"):
            batch.drop_column(column)
