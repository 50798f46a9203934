"""`postmortem dev` as a subprocess for the outage, crash and storm proofs, and what they send it.

The service of tests/dev_service.py with what these proofs need on top: the pid of the embedded
Temporal dev server (from the pid file it writes, checked to be a child of the service, so a stale
file can never make a test kill a stranger), a way to keep Temporal's port taken so the supervisor
cannot bring it back before the test is done with the outage, signed PagerDuty deliveries built from
the real fixture, and a count of the reports over the paged API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from postmortem.webhooks.pagerduty_signature import HEADER as SIGNATURE_HEADER
from postmortem.webhooks.pagerduty_signature import sign
from tests.dev_service import DevService as BaseDevService
from tests.fixtures import fixture_json
from tests.support import eventually

SECRET = "reliability-pagerduty-secret"
ADMIN = "reliability-admin-token"
RESOLVED = "pagerduty_v3_incident_resolved.json"
PAGERDUTY = "/webhooks/pagerduty"


class DevService(BaseDevService):
    """The shared `postmortem dev`, with the PagerDuty secret these proofs sign with and the pid of its
    embedded Temporal dev server."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, {"POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS": SECRET}, admin_token=ADMIN)

    def temporal_pid(self) -> int:
        """The embedded Temporal server's pid, from its pid file, checked to be our child."""
        assert self.process is not None
        pid = int((self.data_dir / "temporal.pid").read_text().strip())
        stat = Path(f"/proc/{pid}/stat").read_text()
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the command name in parentheses
        assert parent == self.process.pid, f"pid {pid} in temporal.pid is not a child of the service"
        return pid


async def wait_until_gone(pid: int, timeout: float = 10) -> None:
    """A killed child stays a zombie until its parent reaps it; its sockets are closed either way."""

    async def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        return state in ("Z", "X")

    await eventually(gone, timeout=timeout, interval=0.01)


@contextlib.asynccontextmanager
async def port_held(port: int, timeout: float = 5) -> AsyncIterator[None]:
    """Listen on Temporal's port and drop every connection, like a dead server does.

    While it is held, the supervisor's restart finds the port taken and backs off, so the outage
    lasts exactly as long as the test needs; clients get their connections cut, as they would
    from a server that is gone. Bound within milliseconds of the kill, well inside the supervisor's
    grace before its first restart; a failure to bind says the supervisor won the race.
    """

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    deadline = time.monotonic() + timeout
    while True:
        try:
            server = await asyncio.start_server(drop, "127.0.0.1", port)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


def resolve_body(incident_id: str, event_id: str | None = None) -> bytes:
    """The real V3 `incident.resolved` capture for another incident (and event id, if given)."""
    payload = fixture_json(RESOLVED)
    payload["event"]["data"]["id"] = incident_id
    payload["event"]["id"] = event_id or f"EV-{incident_id}"
    return json.dumps(payload).encode()


def signed(body: bytes, webhook_id: str | None = None, secret: str = SECRET) -> dict[str, str]:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}
    if webhook_id is not None:
        headers["X-Webhook-Id"] = webhook_id
    return headers


def report_id(incident_id: str) -> str:
    return f"pagerduty-{incident_id}"


async def report_ids(http: httpx.AsyncClient) -> Counter[str]:
    """Every report the API lists, counted by id over all pages (a report listed twice counts twice)."""
    found: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 200}
        if cursor is not None:
            params["cursor"] = cursor
        response = await http.get("/api/postmortems", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        found.update(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def wait_for_reports(
    http: httpx.AsyncClient, service: DevService, expected: set[str], timeout: float
) -> Counter[str]:
    """Poll the API until every expected report exists; returns what it lists then."""

    async def all_there() -> Counter[str] | None:
        assert service.process is not None and service.process.poll() is None, service.output()[-4000:]
        found = await report_ids(http)
        return found if expected <= set(found) else None

    try:
        return await eventually(all_there, timeout=timeout, interval=1.0)
    except AssertionError:
        found = await report_ids(http)
        missing = sorted(expected - set(found))
        inbox = await http.get("/api/inbox")
        raise AssertionError(
            f"{len(missing)} of {len(expected)} reports missing after {timeout:g} s (e.g. {missing[:5]}); "
            f"/api/inbox: {inbox.status_code} {inbox.text[:1500]}\nservice log tail:\n{service.output()[-3000:]}"
        ) from None
