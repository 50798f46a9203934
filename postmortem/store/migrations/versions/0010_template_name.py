"""The team template a report was drafted from, when it is not a built-in one.

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("postmortems") as batch:
        batch.add_column(sa.Column("template_name", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("postmortems") as batch:
        batch.drop_column("template_name")
