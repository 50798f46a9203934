"""The store's tables. Alembic migrations in `migrations/` create them; these mappings read them."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from postmortem.timezones import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which has no zones) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass a timezone-aware UTC value")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value) if value is not None else None


class Base(DeclarativeBase):
    pass


# Written with each database's own full-text SQL (postmortem/store/similarity.py), so not mapped:
# PostgreSQL's table with its generated tsvector, SQLite's FTS5 table and the shadow tables it makes.
FULL_TEXT_TABLES = "postmortem_search"


def mapped_name(name: str | None, type_: str, parent_names: MutableMapping[Any, Any]) -> bool:
    """For Alembic's comparisons (`include_name`): everything but the full-text tables is ours to map."""
    return not (type_ == "table" and name is not None and name.startswith(FULL_TEXT_TABLES))


class PostmortemRow(Base):
    __tablename__ = "postmortems"
    # The lists' keyset order (sort column, id), alone and under the team and status filters (migration 0018).
    __table_args__ = (
        Index("ix_postmortems_created_id", "created_at", "id"),
        Index("ix_postmortems_updated_id", "updated_at", "id"),
        Index("ix_postmortems_team_created", "team", "created_at", "id"),
        Index("ix_postmortems_status_created", "status", "created_at", "id"),
        Index("ix_postmortems_visibility", "visibility"),
    )

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), index=True)
    team: Mapped[str | None] = mapped_column(String(200), index=True)
    language: Mapped[str] = mapped_column(String(8))
    variant: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(8))
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sections: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    workflow_id: Mapped[str] = mapped_column(String(250))
    review: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    visibility: Mapped[str] = mapped_column(String(16), server_default="organisation")
    author: Mapped[str | None] = mapped_column(String(320))
    cause_category: Mapped[str | None] = mapped_column(String(32))
    template_name: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # What /api/metrics counts, out of `metrics` and `review` (store/metric_columns.py, migration 0021).
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    month: Mapped[str | None] = mapped_column(String(7), index=True)
    time_to_detect_seconds: Mapped[float | None] = mapped_column(Float)
    time_to_resolve_seconds: Mapped[float | None] = mapped_column(Float)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recurred: Mapped[int | None] = mapped_column(Integer)  # the latest follow-up's verdict

    incidents: Mapped[list[IncidentRow]] = relationship(
        back_populates="postmortem", cascade="all, delete-orphan", passive_deletes=True, order_by="IncidentRow.id"
    )
    services: Mapped[list[PostmortemServiceRow]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    action_items: Mapped[list[ActionItemRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ActionItemRow.created_at"
    )
    similar_links: Mapped[list[SimilarRow]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SimilarRow.rank",
        foreign_keys="SimilarRow.postmortem_id",
    )


class SimilarRow(Base):
    """One of a report's similar past reports ("have we seen this before?"), ranked when drafted.

    Who may see it, its title and its open action items are read at each load, so a listing never
    outlives a change of visibility; deleting either report deletes the link.
    """

    __tablename__ = "similar_reports"

    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True)
    similar_id: Mapped[str] = mapped_column(
        ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)

    other: Mapped[PostmortemRow] = relationship(foreign_keys=[similar_id], lazy="raise")


class RevisionRow(Base):
    """The document as it was at one version (written with the edit that made it): what is approved is published."""

    __tablename__ = "postmortem_revisions"

    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DocumentUpdateRow(Base):
    """One update of a report's co-edited document (Yjs), appended as it comes; compaction folds a
    report's rows into one. Every API process polls the rows after the last it saw (the fan-out)."""

    __tablename__ = "document_updates"
    __table_args__ = (Index("ix_document_updates_report", "postmortem_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    origin: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DocumentSyncRow(Base):
    """The document's state when it last agreed with the stored text (`version`): the base from which
    a change made outside the document is diffed, so it merges with what was typed since."""

    __tablename__ = "document_sync"

    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[bytes] = mapped_column(LargeBinary)


class ProblemRow(Base):
    """A side effect of the report's workflows that failed for good, one row per step and target."""

    __tablename__ = "problems"

    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(250))
    step: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(400))
    message: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class PostmortemServiceRow(Base):
    """One row per affected service, so reports can be filtered by service on any database."""

    __tablename__ = "postmortem_services"

    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class IncidentRow(Base):
    """Each incident belongs to at most one post-mortem: the unique key is the lasting dedupe guard."""

    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("source", "incident_id", name="uq_incidents_source_incident_id"),
        Index("ix_incidents_incident_id", "incident_id"),  # the list's incident filter names no source
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    postmortem: Mapped[PostmortemRow] = relationship(back_populates="incidents")


class ActionItemRow(Base):
    __tablename__ = "action_items"
    # The board's order (due date, then created) and its filters: owner, status with the due date (overdue).
    __table_args__ = (
        Index("ix_action_items_due_created", "due_date", "created_at"),
        Index("ix_action_items_owner", "owner"),
        Index("ix_action_items_status_due", "status", "due_date"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(320))
    due_date: Mapped[date | None] = mapped_column(Date)
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)
    ticket_key: Mapped[str | None] = mapped_column(String(100))
    ticket_url: Mapped[str | None] = mapped_column(Text)
    ticket_tracker: Mapped[str | None] = mapped_column(String(16))
    # What the item and its ticket last agreed on (a push that succeeded, the ticket made or found, the
    # item following its ticket): which side changed since decides a follow-up sync (store/action_items.py).
    agreed_ticket_state: Mapped[str | None] = mapped_column(String(16))
    agreed_status: Mapped[str | None] = mapped_column(String(16))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiTokenRow(Base):
    """API tokens are stored as SHA-256 hashes: they are random, so a slow hash adds nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TimelineEntryRow(Base):
    """Every gathered event, unique per source item: re-gathering after a crash adds nothing twice."""

    __tablename__ = "timeline_entries"
    __table_args__ = (UniqueConstraint("postmortem_id", "key", name="uq_timeline_entries_postmortem_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    postmortem_id: Mapped[str] = mapped_column(String(200), index=True)
    key: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(320))
    text: Mapped[str] = mapped_column(Text)
    evidence_url: Mapped[str | None] = mapped_column(Text)
    incident_id: Mapped[str | None] = mapped_column(String(200))
    # The people the entry is about (`TimelineEntry.people`); NULL for entries stored before 0014.
    people: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)


class SourceStatusRow(Base):
    """How far each source's gather got for a post-mortem, and why it failed if it did."""

    __tablename__ = "evidence_sources"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    entries: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertEventRow(Base):
    """Alertmanager alerts as they arrive, before any incident exists to attach them to."""

    __tablename__ = "alert_events"
    __table_args__ = (UniqueConstraint("fingerprint", "starts_at", name="uq_alert_events_fingerprint_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    generator_url: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MeetingRow(Base):
    """The review meeting of a post-mortem: the current revision of its invite."""

    __tablename__ = "meetings"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryRow(Base):
    """Every message sent to the outside world, by a deterministic key checked before sending again."""

    __tablename__ = "deliveries"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    postmortem_id: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryAttemptRow(Base):
    """A message we began to send and have not heard back about yet: the start of the window in which the
    outside world may have done it without our knowing (a crash between its "yes" and our DeliveryRow)."""

    __tablename__ = "delivery_attempts"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    postmortem_id: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExportRow(Base):
    """The final exports rendered when a report is published (one row per format)."""

    __tablename__ = "exports"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    format: Mapped[str] = mapped_column(String(16), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    published_count: Mapped[int] = mapped_column(Integer)
    slug: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CommentRow(Base):
    """A comment on one section; a thread is resolved as a whole (its root comment)."""

    __tablename__ = "comments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    postmortem_id: Mapped[str] = mapped_column(String(200), index=True)
    section: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[str | None] = mapped_column(String(32))
    author: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[str]] = mapped_column(JSON)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TemplateRow(Base):
    """A team's own report template (the built-in ones ship with the code and are not stored)."""

    __tablename__ = "templates"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FollowUpRow(Base):
    """One follow-up check of a published report's action items (30, 60, 90 days by default)."""

    __tablename__ = "follow_ups"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboxEntryRow(Base):
    """A webhook delivery, committed before it is answered; the relay hands it to Temporal later.

    One row per incident event. The unique keys are the duplicate guard, both within one incident:
    the same event id (a sender's retry, or the event sent again) or the same delivery id. Never
    across incidents, so an id that two incidents happen to share (or a forged, unsigned
    `X-Webhook-Id`) cannot make one incident's delivery vanish as another's duplicate. SQLite's
    AUTOINCREMENT keeps ids from being reused after pruning: a workflow refers to its entry by id.
    """

    __tablename__ = "inbox_entries"
    __table_args__ = (
        UniqueConstraint("source", "incident_key", "event_id", name="uq_inbox_entries_event"),
        UniqueConstraint("source", "incident_key", "delivery_id", name="uq_inbox_entries_delivery"),
        Index("ix_inbox_entries_state_id", "state", "id"),
        Index("ix_inbox_entries_incident_key", "incident_key", "state", "id"),
        Index("ix_inbox_entries_done_at", "done_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str | None] = mapped_column(String(300))
    delivery_id: Mapped[str | None] = mapped_column(String(300))
    incident_key: Mapped[str] = mapped_column(String(240))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivery: Mapped[dict[str, Any]] = mapped_column(JSON)
    incident_raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ServiceSecretRow(Base):
    """A secret the service made for itself (e.g. the signed links' key), shared by every replica."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
