"""A delivery we accept (2xx, so the sender does not retry) but do not act on."""

from __future__ import annotations

from pydantic import BaseModel


class Ignored(BaseModel):
    event_type: str
    event_id: str | None = None
    reason: str
