"""Problems (side effects that failed for good, shown on the report) and the document's revisions.

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reports written before this revision have none: their current version is read from the report itself.
    op.create_table(
        "postmortem_revisions",
        sa.Column(
            "postmortem_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "problems",
        sa.Column(
            "postmortem_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("workflow_id", sa.String(250), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("problems")
    op.drop_table("postmortem_revisions")
