"""The people a timeline entry is about (who acknowledged, resolved or wrote it; whom it was assigned or
escalated to), so responders can be named with their roles.

Revision ID: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries gathered before this revision keep NULL: they name no one beyond their actor.
    with op.batch_alter_table("timeline_entries") as batch:
        batch.add_column(sa.Column("people", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("timeline_entries") as batch:
        batch.drop_column("people")
