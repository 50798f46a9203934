"""Which reports a listing returns, and in which order: the viewer's visibility, the filters, a cursor.

Query building only (no session): `PostmortemStore.list` runs what `listing_query` builds. Pages are
keyset-paginated, newest first, by (sort column, id); the cursor is that pair of the page's last row.
`visible_to` is `review.visibility.may_see` in SQL, for every list that crosses reports (reports,
action items, metrics), so a report hidden from one caller is in none of their answers.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BindParameter, Boolean, ColumnElement, Select, and_, bindparam, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from postmortem.models import Status, Visibility
from postmortem.review.visibility import Reader
from postmortem.store.tables import IncidentRow, PostmortemRow, PostmortemServiceRow
from postmortem.timezones import as_utc

__all__ = [
    "SORT_COLUMNS",
    "InvalidCursor",
    "PostmortemFilter",
    "Viewer",
    "decode_cursor",
    "encode_cursor",
    "filter_conditions",
    "listing_query",
    "next_cursor",
    "visible_to",
]


class InvalidCursor(ValueError):
    """A cursor this API did not hand out (or one mangled on the way)."""


# Who is listing: the same reader the visibility rule judges (admins see everything, others what the
# reports' visibility allows); `filtered` applies that rule in SQL.
Viewer = Reader


class PostmortemFilter(BaseModel):
    viewer: Viewer | None = None
    status: Status | None = None
    team: str | None = None
    service: str | None = None
    incident_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


class _ReviewedBy(ColumnElement[bool]):
    """True when the report's stored review names `name` as a reviewer (any case, as `Review.reviewer`).

    The review is a JSON document; each database spells "an element of this array" its own way.
    """

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("name", InternalTraversal.dp_clauseelement)]

    def __init__(self, name: str) -> None:
        self.name: BindParameter[str] = bindparam("reviewer_name", name, unique=True)


@compiles(_ReviewedBy, "sqlite")
def _reviewed_by_sqlite(element: _ReviewedBy, compiler: SQLCompiler, **kw: Any) -> str:
    review, name = compiler.process(PostmortemRow.__table__.c.review, **kw), compiler.process(element.name, **kw)
    return (
        f"EXISTS (SELECT 1 FROM json_each({review}, '$.reviewers') AS reviewer "
        f"WHERE lower(json_extract(reviewer.value, '$.reviewer')) = lower({name}))"
    )


@compiles(_ReviewedBy, "postgresql")
def _reviewed_by_postgresql(element: _ReviewedBy, compiler: SQLCompiler, **kw: Any) -> str:
    review, name = compiler.process(PostmortemRow.__table__.c.review, **kw), compiler.process(element.name, **kw)
    return (
        f"EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN json_typeof({review} -> 'reviewers') = 'array' "
        f"THEN {review} -> 'reviewers' END) AS reviewer WHERE lower(reviewer ->> 'reviewer') = lower({name}))"
    )


def visible_to(viewer: Viewer | None) -> ColumnElement[bool]:
    """The reports `viewer` may see (all of them for None: the system itself, or an admin)."""
    if viewer is None or viewer.admin:
        return true()
    allowed: list[ColumnElement[bool]] = [
        PostmortemRow.visibility == Visibility.ORGANISATION.value,
        PostmortemRow.author == viewer.name,
        _ReviewedBy(viewer.name),
    ]
    if viewer.team:
        allowed.append(and_(PostmortemRow.visibility == Visibility.TEAM.value, PostmortemRow.team == viewer.team))
    return or_(*allowed)


SORT_COLUMNS = {"created": PostmortemRow.created_at, "updated": PostmortemRow.updated_at}


def encode_cursor(sort_value: datetime, row_id: str) -> str:
    raw = json.dumps([as_utc(sort_value).isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort_value, row_id = json.loads(raw)
        return as_utc(datetime.fromisoformat(sort_value)), str(row_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not one this API returned") from exc


def filter_conditions(filters: PostmortemFilter) -> list[ColumnElement[bool]]:
    """What the viewer may see and the filters ask for, as conditions on `postmortems` (lists and metrics alike)."""
    conditions = [visible_to(filters.viewer)]
    if filters.status:
        conditions.append(PostmortemRow.status == filters.status.value)
    if filters.team:
        conditions.append(PostmortemRow.team == filters.team)
    if filters.service:
        conditions.append(
            PostmortemRow.id.in_(
                select(PostmortemServiceRow.postmortem_id).where(PostmortemServiceRow.service == filters.service)
            )
        )
    if filters.incident_id:
        conditions.append(
            PostmortemRow.id.in_(
                select(IncidentRow.postmortem_id).where(IncidentRow.incident_id == filters.incident_id)
            )
        )
    if filters.created_from:
        conditions.append(PostmortemRow.created_at >= filters.created_from)
    if filters.created_to:
        conditions.append(PostmortemRow.created_at < filters.created_to)
    return conditions


def listing_query(
    query: Select[PostmortemRow], filters: PostmortemFilter, *, sort: str, limit: int, cursor: str | None
) -> Select[PostmortemRow]:
    """`query` narrowed to what the viewer may see and the filters ask for, after `cursor`, one row past a page."""
    column = SORT_COLUMNS[sort]
    query = query.where(*filter_conditions(filters))
    if cursor:
        after_value, after_id = decode_cursor(cursor)
        query = query.where(or_(column < after_value, and_(column == after_value, PostmortemRow.id < after_id)))
    return query.order_by(column.desc(), PostmortemRow.id.desc()).limit(limit + 1)


def next_cursor(rows: list[PostmortemRow], limit: int, sort: str) -> str | None:
    """The cursor of the next page when `rows` (a page and one more) has one, else None."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(getattr(last, SORT_COLUMNS[sort].key), last.id)
