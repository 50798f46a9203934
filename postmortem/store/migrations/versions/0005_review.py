"""Review lifecycle: the review state on each report, stored exports, and section comments.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("postmortems") as batch:
        batch.add_column(sa.Column("review", sa.JSON(), nullable=True))
    op.create_table(
        "exports",
        sa.Column("postmortem_id", sa.String(200), primary_key=True),
        sa.Column("format", sa.String(16), primary_key=True),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("published_count", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_exports_slug", "exports", ["slug"])
    op.create_table(
        "comments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("postmortem_id", sa.String(200), nullable=False),
        sa.Column("section", sa.String(100), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("author", sa.String(320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("mentions", sa.JSON(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(320), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_comments_postmortem_id", "comments", ["postmortem_id"])


def downgrade() -> None:
    op.drop_table("comments")
    op.drop_table("exports")
    with op.batch_alter_table("postmortems") as batch:
        batch.drop_column("review")
