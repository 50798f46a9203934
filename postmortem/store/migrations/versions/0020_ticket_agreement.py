"""What an action item and its ticket last agreed on (#16, which side wins): the ticket's state and the
item's status at the last successful push, the ticket's creation, or the item following its ticket.
A follow-up sync takes the ticket's state only when the ticket moved since and the item did not.

Revision ID: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null for tickets from before: their sync takes the ticket's state, as it always did.
    with op.batch_alter_table("action_items") as batch:
        batch.add_column(sa.Column("agreed_ticket_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("agreed_status", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_items") as batch:
        batch.drop_column("agreed_status")
        batch.drop_column("agreed_ticket_state")
