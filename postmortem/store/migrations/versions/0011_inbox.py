"""The inbox: webhook deliveries committed before they are answered, relayed to Temporal afterwards.

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(300), nullable=True),
        sa.Column("delivery_id", sa.String(300), nullable=True),
        sa.Column("incident_key", sa.String(240), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("delivery", sa.JSON(), nullable=False),
        sa.Column("incident_raw", sa.JSON(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.UniqueConstraint("source", "incident_key", "event_id", name="uq_inbox_entries_event"),
        sa.UniqueConstraint("source", "incident_key", "delivery_id", name="uq_inbox_entries_delivery"),
        sqlite_autoincrement=True,
    )
    # The claim walks pending entries in arrival order and stops at its limit (no sort of the backlog).
    op.create_index("ix_inbox_entries_state_id", "inbox_entries", ["state", "id"])
    # "Is an older entry of this incident still pending?", asked for every candidate of a claim.
    op.create_index("ix_inbox_entries_incident_key", "inbox_entries", ["incident_key", "state", "id"])
    op.create_index("ix_inbox_entries_done_at", "inbox_entries", ["done_at"])


def downgrade() -> None:
    op.drop_table("inbox_entries")
