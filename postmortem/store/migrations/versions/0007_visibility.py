"""Visibility per report (private, team, organisation), its author, and a team on API tokens.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("postmortems") as batch:
        batch.add_column(sa.Column("visibility", sa.String(16), nullable=False, server_default="organisation"))
        batch.add_column(sa.Column("author", sa.String(320), nullable=True))
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("team", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("team")
    with op.batch_alter_table("postmortems") as batch:
        batch.drop_column("author")
        batch.drop_column("visibility")
