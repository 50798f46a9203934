"""Indexes for every filter and sort of the lists, the action-item board and the metrics (issue 15, scale).

Revision ID: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_postmortems_created_id", "postmortems", ["created_at", "id"]),
    ("ix_postmortems_updated_id", "postmortems", ["updated_at", "id"]),
    ("ix_postmortems_team_created", "postmortems", ["team", "created_at", "id"]),
    ("ix_postmortems_status_created", "postmortems", ["status", "created_at", "id"]),
    ("ix_postmortems_visibility", "postmortems", ["visibility"]),
    ("ix_incidents_incident_id", "incidents", ["incident_id"]),
    ("ix_action_items_due_created", "action_items", ["due_date", "created_at"]),
    ("ix_action_items_owner", "action_items", ["owner"]),
    ("ix_action_items_status_due", "action_items", ["status", "due_date"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
