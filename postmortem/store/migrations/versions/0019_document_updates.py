"""The co-edited documents (#14): their appended updates and the state that last agreed with the text.

Revision ID: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_updates",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("postmortem_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,  # ids never reused after a compaction: pollers go by "after the last id"
    )
    op.create_index("ix_document_updates_report", "document_updates", ["postmortem_id", "id"])
    op.create_table(
        "document_sync",
        sa.Column(
            "postmortem_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("document_sync")
    op.drop_index("ix_document_updates_report", "document_updates")
    op.drop_table("document_updates")
