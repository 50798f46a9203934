"""'Have we seen this before?': a full-text index of the reports and each report's similar ones.

PostgreSQL: `postmortem_search` with a weighted `tsvector` column (generated) under a GIN index.
SQLite: `postmortem_search` is an FTS5 table of the same columns, emptied of a deleted report by a
trigger. The store (postmortem/store/similarity.py) writes a report's row with every write of the
report; existing reports are indexed here.

Revision ID: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

POSTGRES_SEARCH = """
CREATE TABLE postmortem_search (
    postmortem_id VARCHAR(200) PRIMARY KEY REFERENCES postmortems (id) ON DELETE CASCADE,
    title TEXT NOT NULL DEFAULT '',
    services TEXT NOT NULL DEFAULT '',
    alerts TEXT NOT NULL DEFAULT '',
    cause TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    document TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', services), 'A')
        || setweight(to_tsvector('simple', alerts), 'B')
        || setweight(to_tsvector('simple', cause), 'B')
        || setweight(to_tsvector('simple', title), 'C')
        || setweight(to_tsvector('simple', body), 'D')
    ) STORED
)
"""
SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE postmortem_search USING fts5("
    "postmortem_id UNINDEXED, title, services, alerts, cause, body, tokenize = 'unicode61')"
)
SQLITE_TRIGGER = (
    "CREATE TRIGGER postmortem_search_deleted AFTER DELETE ON postmortems "
    "BEGIN DELETE FROM postmortem_search WHERE postmortem_id = old.id; END"
)


def upgrade() -> None:
    op.create_table(
        "similar_reports",
        sa.Column(
            "postmortem_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("similar_id", sa.String(200), sa.ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
    )
    op.create_index("ix_similar_reports_similar_id", "similar_reports", ["similar_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(POSTGRES_SEARCH)
        op.execute("CREATE INDEX ix_postmortem_search_document ON postmortem_search USING GIN (document)")
    else:
        op.execute(SQLITE_SEARCH)
        op.execute(SQLITE_TRIGGER)
    from postmortem.store.similarity import reindex_all

    reindex_all(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS postmortem_search_deleted")
    op.execute("DROP TABLE IF EXISTS postmortem_search")
    op.drop_index("ix_similar_reports_similar_id", "similar_reports")
    op.drop_table("similar_reports")
