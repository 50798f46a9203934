"""Evidence: gathered timeline entries, per-source gather status, received Alertmanager alerts.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postmortem.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("postmortem_id", sa.String(200), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(320), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("evidence_url", sa.Text(), nullable=True),
        sa.Column("incident_id", sa.String(200), nullable=True),
        sa.UniqueConstraint("postmortem_id", "key", name="uq_timeline_entries_postmortem_key"),
    )
    op.create_index("ix_timeline_entries_postmortem_id", "timeline_entries", ["postmortem_id"])
    op.create_index("ix_timeline_entries_at", "timeline_entries", ["at"])
    op.create_table(
        "evidence_sources",
        sa.Column("postmortem_id", sa.String(200), primary_key=True),
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("generator_url", sa.Text(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("fingerprint", "starts_at", name="uq_alert_events_fingerprint_start"),
    )
    op.create_index("ix_alert_events_starts_at", "alert_events", ["starts_at"])
    op.create_index("ix_alert_events_ends_at", "alert_events", ["ends_at"])


def downgrade() -> None:
    for table in ("alert_events", "evidence_sources", "timeline_entries"):
        op.drop_table(table)
