"""What /api/metrics counts as plain columns of `postmortems` (issue 15, scale): out of each report's
`metrics` and `review` documents and its latest follow-up's verdict, filled here for the rows already
stored.

Revision ID: 0021
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from postmortem.store.metric_columns import from_follow_up, from_metrics, from_review
from postmortem.store.tables import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

BATCH = 1000

REPORT_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
    sa.Column("month", sa.String(7), nullable=True),
    sa.Column("time_to_detect_seconds", sa.Float(), nullable=True),
    sa.Column("time_to_resolve_seconds", sa.Float(), nullable=True),
    sa.Column("published_at", UTCDateTime(), nullable=True),
    sa.Column("recurred", sa.Integer(), nullable=True),
]


def upgrade() -> None:
    for column in REPORT_COLUMNS:
        op.add_column("postmortems", column)
    op.create_index("ix_postmortems_month", "postmortems", ["month"])
    connection = op.get_bind()
    reports = sa.table(
        "postmortems",
        sa.column("id", sa.String()),
        sa.column("metrics", sa.JSON()),
        sa.column("review", sa.JSON()),
        sa.column("created_at", UTCDateTime()),
        *(sa.column(c.name, c.type) for c in REPORT_COLUMNS),
    )
    follow_ups = sa.table(
        "follow_ups",
        sa.column("postmortem_id", sa.String()),
        sa.column("day", sa.Integer()),
        sa.column("data", sa.JSON()),
    )
    latest: dict[str, dict[str, Any]] = {}
    for pm_id, data in connection.execute(
        sa.select(follow_ups.c.postmortem_id, follow_ups.c.data).order_by(follow_ups.c.postmortem_id, follow_ups.c.day)
    ):
        latest[pm_id] = data or {}  # the last one per report wins: its latest day
    last = ""
    while rows := connection.execute(
        sa.select(reports.c.id, reports.c.metrics, reports.c.review, reports.c.created_at)
        .where(reports.c.id > last)
        .order_by(reports.c.id)
        .limit(BATCH)
    ).all():
        connection.execute(
            sa.update(reports)
            .where(reports.c.id == sa.bindparam("b_id"))
            .values({c.name: sa.bindparam(c.name) for c in REPORT_COLUMNS}),
            [
                {
                    "b_id": pm_id,
                    **from_metrics(metrics or {}, created_at),
                    **from_review(review),
                    **from_follow_up(latest.get(pm_id, {})),
                }
                for pm_id, metrics, review, created_at in rows
            ],
        )
        last = rows[-1][0]


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ has it): a batch copy of `postmortems` on SQLite would drop the
    # table, and with it every row that cascades from it.
    op.drop_index("ix_postmortems_month", table_name="postmortems")
    for column in reversed(REPORT_COLUMNS):
        op.drop_column("postmortems", column.name)
