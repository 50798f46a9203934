"""Initial schema: post-mortems, their services, incidents, action items and API tokens.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postmortems",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("variant", sa.String(32), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(8), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("workflow_id", sa.String(250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_postmortems_status", "postmortems", ["status"])
    op.create_index("ix_postmortems_team", "postmortems", ["team"])
    op.create_index("ix_postmortems_created_at", "postmortems", ["created_at"])
    op.create_index("ix_postmortems_updated_at", "postmortems", ["updated_at"])
    op.create_table(
        "postmortem_services",
        sa.Column(
            "postmortem_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("service", sa.String(200), primary_key=True),
    )
    op.create_index("ix_postmortem_services_service", "postmortem_services", ["service"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("postmortem_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("incident_id", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("source", "incident_id", name="uq_incidents_source_incident_id"),
    )
    op.create_index("ix_incidents_postmortem_id", "incidents", ["postmortem_id"])
    op.create_table(
        "action_items",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("postmortem_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(320), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_action_items_postmortem_id", "action_items", ["postmortem_id"])
    op.create_index("ix_action_items_status", "action_items", ["status"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in ("api_tokens", "action_items", "incidents", "postmortem_services", "postmortems"):
        op.drop_table(table)
