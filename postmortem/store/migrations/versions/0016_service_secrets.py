"""Secrets the service generates for itself and keeps (the signed links' key when none is configured).

Revision ID: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_secrets")
