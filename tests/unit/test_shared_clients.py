"""One client per outside system per worker: built once, reused by every call, nothing for what is not configured.

The proof is counted where it happens: TLS handshakes at a loopback HTTPS server (trustme's CA, read
through SSL_CERT_FILE as a deployment's would be), and the TLS contexts and httpx clients built while
activities run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trustme
from temporalio.testing import ActivityEnvironment

from postmortem.activities.clients import OutsideClients, https_context, smtp_context
from postmortem.activities.gather import GatherActivities, GatherInput
from postmortem.activities.link import LinkActivities
from postmortem.activities.meeting import MeetingActivities, PlanMeetingInput, SendInviteInput
from postmortem.activities.problems import ProblemActivities
from postmortem.activities.review import ReviewActivities
from postmortem.activities.tickets import TicketActivities
from postmortem.app.http_clients import outside_clients, worker_clients
from postmortem.app.settings import Settings
from postmortem.config import (
    CalDavSettings,
    GitHubSettings,
    HttpSettings,
    PagerDutySettings,
    SlackSettings,
    SmtpSettings,
    TicketsSettings,
)
from postmortem.incident.teams import TeamsConfig
from postmortem.models import Language
from postmortem.store.store import Store
from tests.factories import pagerduty_event

Route = Callable[[str, str], tuple[int, str, bytes]]


@dataclass
class TlsServer:
    """HTTP/1.1 with keep-alive over TLS on loopback; counts handshakes (connections) and requests."""

    url: str
    connections: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def tls_server(route: Route, ca: trustme.CA) -> AsyncIterator[TlsServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # not create_default_context: the tests count those
    ca.issue_cert("127.0.0.1").configure_cert(context)
    state = TlsServer(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1  # the handshake is done before asyncio hands the connection over
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                length = int({k.lower(): v for k, v in headers.items()}.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                path = target.split("?", 1)[0]
                state.requests.append((method, path))
                status, content_type, body = route(method, path)
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    state.url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


def json_answer(body: object) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(body).encode()


def pagerduty_route(method: str, path: str) -> tuple[int, str, bytes]:
    for tail, key in (("/log_entries", "log_entries"), ("/alerts", "alerts"), ("/notes", "notes")):
        if path.endswith(tail):
            return json_answer({key: [], "more": False})
    return 404, "application/json", b'{"error": {"message": "Not Found"}}'


FREEBUSY = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VFREEBUSY\r\n"
    b"DTSTAMP:20240501T000000Z\r\nDTSTART:20240501T000000Z\r\nDTEND:20240601T000000Z\r\n"
    b"END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
)


def caldav_route(method: str, path: str) -> tuple[int, str, bytes]:
    if method == "REPORT":
        return 200, "text/calendar", FREEBUSY
    if method == "PUT":
        return 201, "text/plain", b""
    return 405, "text/plain", b""


@dataclass
class Built:
    """What was built while counting: TLS contexts and httpx clients."""

    contexts: int = 0
    clients: int = 0


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[trustme.CA]:
    """A test CA, trusted the way a deployment trusts its own (SSL_CERT_FILE); fresh shared contexts."""
    authority = trustme.CA()
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    https_context.cache_clear()
    smtp_context.cache_clear()
    yield authority
    https_context.cache_clear()
    smtp_context.cache_clear()


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Built:
    """Counts every ssl.create_default_context() and httpx.AsyncClient() from now on."""
    counts = Built()
    create_context = ssl.create_default_context
    client_init = httpx.AsyncClient.__init__

    def counting_context(*args, **kwargs):
        counts.contexts += 1
        return create_context(*args, **kwargs)

    def counting_client(self, *args, **kwargs):
        counts.clients += 1
        client_init(self, *args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting_context)
    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_client)
    return counts


def plan_input(postmortem_id: str) -> PlanMeetingInput:
    incident = pagerduty_event(f"P{uuid.uuid4().hex[:8].upper()}").incident
    return PlanMeetingInput(
        postmortem_id=postmortem_id,
        title=incident.title,
        severity=incident.severity,
        resolved_at=incident.resolved_at,
        language=Language.EN,
        team=TeamsConfig().resolve(incident),
        now=datetime.now(UTC),
    )


async def test_one_tls_handshake_serves_every_gather_of_a_source(
    ca: trustme.CA, built: Built, sqlite_store: Store
) -> None:
    async with tls_server(pagerduty_route, ca) as server:
        pagerduty = PagerDutySettings(api_url=server.url, api_token="pd-token")
        clients = OutsideClients.configured(pagerduty=pagerduty, http=HttpSettings(timeout_seconds=5))
        assert (built.contexts, built.clients) == (1, 1)  # one context (the CA read once), one client
        gather = GatherActivities(sqlite_store.evidence, pagerduty=pagerduty, clients=clients)
        for number in range(3):
            result = await ActivityEnvironment().run(
                gather.gather_pagerduty, GatherInput(postmortem_id=f"pagerduty-P{number}", incident_id=f"P{number}")
            )
            assert result.state.value == "complete"
        await clients.aclose()
    assert len(server.requests) == 9  # log entries, alerts, notes: three calls per gather
    assert server.connections == 1  # every call on the one kept-alive connection
    assert (built.contexts, built.clients) == (1, 1)  # nothing built while the activities ran


async def test_plan_meeting_and_the_calendar_invite_share_one_connection(
    ca: trustme.CA, built: Built, sqlite_store: Store
) -> None:
    async with tls_server(caldav_route, ca) as server:
        caldav = CalDavSettings(url=f"{server.url}/cal/", username="alice", password="secret")
        meetings = MeetingActivities(sqlite_store.meetings, caldav=caldav)  # builds its own clients, once
        assert (built.contexts, built.clients) == (1, 1)
        for number in range(3):
            pm_id = f"pagerduty-PM{number}"
            meeting = await ActivityEnvironment().run(meetings.plan_meeting, plan_input(pm_id))
            sent = await ActivityEnvironment().run(
                meetings.send_invite,
                SendInviteInput(
                    postmortem_id=pm_id, sequence=meeting.sequence, channel="caldav", now=datetime.now(UTC)
                ),
            )
            assert sent.sent, sent
        await meetings.aclose()
    assert [method for method, _ in server.requests] == ["REPORT", "PUT"] * 3
    assert server.connections == 1
    assert (built.contexts, built.clients) == (1, 1)


async def test_channels_that_are_not_configured_cost_nothing(built: Built, sqlite_store: Store) -> None:
    """No CalDAV, no SMTP: planning the meeting and both invite deliveries build no client and no TLS context."""
    meetings = MeetingActivities(sqlite_store.meetings)
    gather = GatherActivities(sqlite_store.evidence, slack=SlackSettings())
    links = LinkActivities(sqlite_store)
    tickets = TicketActivities(sqlite_store)
    assert [meetings._clients.open, gather._clients.open, links._clients.open, tickets._clients.open] == [[]] * 4
    meeting = await ActivityEnvironment().run(meetings.plan_meeting, plan_input("pagerduty-PNONE"))
    for channel in ("email", "caldav"):
        result = await ActivityEnvironment().run(
            meetings.send_invite,
            SendInviteInput(
                postmortem_id="pagerduty-PNONE", sequence=meeting.sequence, channel=channel, now=datetime.now(UTC)
            ),
        )
        assert (result.sent, result.detail) == (False, "not configured")
    assert tickets.client("github") is None
    assert (built.contexts, built.clients) == (0, 0)


def configured_settings() -> Settings:
    return Settings(
        pagerduty=PagerDutySettings(api_token="pd"),
        slack=SlackSettings(bot_token="xoxb-1"),
        caldav=CalDavSettings(url="https://calendar.example/cal/"),
        smtp=SmtpSettings(host="smtp.example"),
        tickets=TicketsSettings(github=GitHubSettings(token="gh", repo="acme/app")),
    )


def test_the_worker_has_one_client_per_configured_system_on_one_tls_context(built: Built) -> None:
    https_context.cache_clear()
    smtp_context.cache_clear()
    clients = outside_clients(configured_settings())
    assert clients.open == ["pagerduty", "slack", "caldav", "github", "smtp"]
    assert built.clients == 4
    assert built.contexts == 2  # one for HTTPS (all four clients), one for SMTP
    pools = {
        id(getattr(clients, name)._transport._pool._ssl_context) for name in ("pagerduty", "slack", "caldav", "github")
    }
    assert pools == {id(https_context())}
    assert clients.smtp is not None and clients.smtp._tls_context is smtp_context()
    again = outside_clients(configured_settings())  # a second worker in the same process: no new context
    assert built.contexts == 2 and again.pagerduty is not clients.pagerduty


async def test_the_activity_classes_of_a_worker_share_its_clients(sqlite_store: Store) -> None:
    """What build_worker does: every class gets the same OutsideClients, so a system has one pool per worker."""
    settings = configured_settings()
    async with worker_clients(settings) as clients:
        gather = GatherActivities(sqlite_store.evidence, pagerduty=settings.pagerduty, clients=clients)
        links = LinkActivities(sqlite_store, pagerduty=settings.pagerduty, clients=clients)
        meetings = MeetingActivities(sqlite_store.meetings, caldav=settings.caldav, smtp=settings.smtp, clients=clients)
        tickets = TicketActivities(sqlite_store, tickets=settings.tickets, clients=clients)
        assert gather._pd is not None and links._pd is not None
        assert gather._pd._http is links._pd._http is clients.pagerduty
        assert meetings._calendar is not None and meetings._calendar._http is clients.caldav
        assert meetings._mailer is clients.smtp
        github = tickets.client("github")
        assert github is not None and tickets.client("github") is github  # the tracker's client is kept too
        review = ReviewActivities(sqlite_store, smtp=settings.smtp, slack=settings.slack, clients=clients)
        problems = ProblemActivities(sqlite_store, smtp=settings.smtp, slack=settings.slack, clients=clients)
        for messenger in (review._messenger, problems._messenger):  # Slack notices and emails to people
            assert messenger._clients.slack is clients.slack and messenger._clients.smtp is clients.smtp
        await gather.aclose()  # not theirs: the worker's clients stay open
        assert clients.pagerduty is not None and not clients.pagerduty.is_closed
    assert all(getattr(clients, name).is_closed for name in ("pagerduty", "slack", "caldav", "github"))


def test_the_shared_contexts_are_built_once_per_process() -> None:
    https_context.cache_clear()
    assert https_context() is https_context()
    assert smtp_context() is smtp_context()


async def test_slack_notices_go_over_the_workers_one_client(ca: trustme.CA, built: Built, sqlite_store: Store) -> None:
    """Every Slack notice built an httpx client (and its TLS context) of its own; now the worker's is used."""

    def slack_route(method: str, path: str) -> tuple[int, str, bytes]:
        return json_answer({"ok": True, "channel": "C1", "ts": "1700000000.000100"})

    async with tls_server(slack_route, ca) as server:
        slack = SlackSettings(api_url=server.url, bot_token="xoxb-1")
        clients = OutsideClients.configured(slack=slack, http=HttpSettings(timeout_seconds=5))
        assert (built.contexts, built.clients) == (1, 1)
        review = ReviewActivities(sqlite_store, slack=slack, clients=clients)
        for number in range(3):
            sent = await review._messenger.slack(
                "pagerduty-PSLACK", f"notice-{number}", "#incidents", f"notice {number}", datetime.now(UTC)
            )
            assert sent
        await clients.aclose()
    assert server.requests == [("POST", "/chat.postMessage")] * 3
    assert server.connections == 1
    assert (built.contexts, built.clients) == (1, 1)
