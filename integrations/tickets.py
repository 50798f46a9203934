"""Trackers for action items: one interface over Jira, GitHub Issues and Linear.

Exactly-once creation rests on the caller's `marker`: every client stores it on the ticket (where,
depends on the tracker; see each module) and `find(marker)` looks for it BEFORE `create`. A create
whose answer was lost ("created upstream, but we never heard") is therefore found on the next try
instead of being made twice — as far as the tracker's lookup sees its own writes at once (Jira's
search does not always; see jira.py).

Also here: the few HTTP helpers the ticket clients share on top of http_errors.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from postmortem.integrations.http_errors import UpstreamError, request
from postmortem.models import TicketState  # defined with the models, where the webhooks read it too

Priority = Literal["HIGH", "MEDIUM", "LOW"]
PRIORITIES: tuple[str, ...] = ("HIGH", "MEDIUM", "LOW")

# A marker has to survive as a Jira label (no spaces), a GitHub label (at most 50 characters), a
# JQL string and a GitHub search phrase (no quotes), and Markdown (no characters Markdown escapes).
MARKER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,49}")


def check_marker(marker: str) -> str:
    """`marker` when it is usable as an idempotency marker on every tracker; ValueError otherwise."""
    if not isinstance(marker, str) or not MARKER.fullmatch(marker):
        raise ValueError(
            f"not a usable ticket marker: {marker!r} (letters, digits, '.', ':' and '-', "
            "starting with a letter or digit, at most 50 characters)"
        )
    return marker


@dataclass(frozen=True)
class TicketRequest:
    """What we ask a tracker for. `marker` is our idempotency marker (e.g. "pm-abc123-item-9f2e")."""

    marker: str
    title: str
    description: str  # Markdown
    due_date: date | None
    priority: Priority
    assignee: str | None  # the tracker's own account reference (login / accountId / user id), or None
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Programming errors only: what a tracker may refuse (an empty title, an unknown assignee) is
        # left to the tracker, whose refusal comes back as a permanent UpstreamError.
        check_marker(self.marker)
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, not {self.priority!r}")


@dataclass(frozen=True)
class Ticket:
    key: str  # the tracker's reference, as `status(key)` takes it back
    url: str  # where a person opens it
    state: TicketState


@dataclass(frozen=True)
class TicketChange:
    """What an action item says now, pushed to its ticket: the whole of it, not a difference, so a
    push sent twice (a retry) leaves the ticket as one push does. `assignee` is the tracker's account
    (None: nobody); the state is changed only when the ticket's differs, so a change that came FROM
    the ticket is no change at all (no ping-pong)."""

    state: TicketState
    assignee: str | None
    due_date: date | None
    assign: bool = True  # False: the owner has no account in the tracker, its assignee is left alone


@runtime_checkable
class TicketClient(Protocol):
    async def find(self, marker: str) -> Ticket | None:
        """The ticket carrying `marker`, or None. Ask this BEFORE `create` (exactly-once)."""
        ...

    async def create(self, request: TicketRequest) -> Ticket:
        """A new ticket carrying `request.marker`; every failure is an UpstreamError."""
        ...

    async def status(self, key: str) -> Ticket:
        """The ticket's current state (and key/url, which may have moved since it was created)."""
        ...

    async def update(self, key: str, change: TicketChange) -> list[str]:
        """Make the ticket say what `change` says; the names of the fields that had to change (none
        when it said so already)."""
        ...


# --- HTTP helpers the ticket clients share ---------------------------------------------------------


class _Keeping:
    """An AsyncClient stand-in for `request()` that remembers the response it got."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self.response: httpx.Response | None = None

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.response = await self._http.request(method, url, **kwargs)
        return self.response


async def exchange(http: httpx.AsyncClient, service: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Like http_errors.request, but an answer of any status comes back for the caller to judge.

    Transport failures (timeouts, refused connections, bad URLs) still raise UpstreamError, worded
    exactly as `request` words them. For trackers whose failures need more than the status to
    classify: GitHub's rate-limit 403s, GraphQL `errors[]` under HTTP 200/400.
    """
    keeping = _Keeping(http)
    try:
        return await request(keeping, service, method, url, **kwargs)  # type: ignore[arg-type]
    except UpstreamError:
        if keeping.response is not None:
            return keeping.response
        raise


def where(response: httpx.Response) -> str:
    """ " (METHOD /path)" for error messages, like http_errors words them (no query string)."""
    try:
        sent = response.request
    except RuntimeError:
        return ""
    return f" ({sent.method} {sent.url.raw_path.decode('ascii', 'replace').split('?', 1)[0]})"


def upstream_error(
    response: httpx.Response,
    service: str,
    detail: str | None,
    *,
    permanent: bool,
    retry_after: float | None = None,
    code: str | None = None,
    head: str | None = None,
) -> UpstreamError:
    """An UpstreamError for `response` with the tracker's own words, in the shared message style."""
    head = head or f"{service} answered {response.status_code} {response.reason_phrase or ''}".rstrip()
    text = " ".join(detail.split()) if detail else ""
    if len(text) > 300:
        text = text[:299] + "…"
    message = f"{head}: {text}" if text else head
    return UpstreamError(
        service,
        response.status_code,
        message + where(response),
        retry_after=retry_after,
        permanent=permanent,
        code=code,
    )


def seconds_until_epoch(value: str | None, now: float | None = None) -> float | None:
    """Seconds from now until a reset time given as Unix epoch seconds (or milliseconds: a value
    past the year 5138 in seconds can only be milliseconds). None for a missing or unusable value."""
    if value is None:
        return None
    try:
        moment = float(value.strip())
    except ValueError:
        return None
    if moment != moment or moment in (float("inf"), float("-inf")) or moment < 0:
        return None
    if moment > 1e11:
        moment /= 1000.0
    now = time.time() if now is None else now
    return max(0.0, round(moment - now, 3))


def json_or_none(response: httpx.Response) -> Any:
    """The decoded body, or None when it is not JSON."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None
