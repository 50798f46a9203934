"""A cause category on each report, for trends.

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("postmortems") as batch:
        batch.add_column(sa.Column("cause_category", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("postmortems") as batch:
        batch.drop_column("cause_category")
