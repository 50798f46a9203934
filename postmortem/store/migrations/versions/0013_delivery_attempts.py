"""Delivery attempts: a message begun and not yet confirmed, so a retry after a crash can ask the outside
world whether the first attempt arrived before sending again.

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_attempts",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("postmortem_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_delivery_attempts_postmortem_id", "delivery_attempts", ["postmortem_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_postmortem_id", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
