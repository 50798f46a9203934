"""Start-up and shut-down of the service's parts, shared by `postmortem dev`, `api` and `worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import uvicorn

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.devserver import DevServer, DevServerError, port_is_free
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.app.temporal import connect, ensure_search_attributes
from postmortem.app.worker import build_worker
from postmortem.config import reveal
from postmortem.incident.teams import TeamsConfig
from postmortem.incident.teams_file import load_teams_file
from postmortem.store.store import Store
from postmortem.store.tokens import Role

log = logging.getLogger("postmortem")


@dataclass
class Foundation:
    settings: Settings
    store: Store
    teams: TeamsConfig


def load_teams(settings: Settings) -> TeamsConfig:
    return load_teams_file(
        settings.teams.file,
        language=settings.report.language,
        template=settings.report.template,
        timezone=settings.report.timezone,
        gather_deadline_seconds=settings.gather.deadline_seconds,
        gather_heartbeat_seconds=settings.gather.heartbeat_seconds,
        tracker=settings.tickets.tracker,
        follow_up_days=settings.follow_up.days,
    )


@contextlib.asynccontextmanager
async def foundation(settings: Settings) -> AsyncIterator[Foundation]:
    """Teams file checked, data folder made, schema migrated, bootstrap token registered."""
    teams = load_teams(settings)
    settings.store.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.store.resolved_database_url, schema=settings.store.database_schema)
    try:
        if bootstrap := reveal(settings.server.bootstrap_admin_token):
            await store.tokens.ensure("bootstrap-admin", Role.ADMIN, bootstrap, _now())
        yield Foundation(settings=settings, store=store, teams=teams)
    finally:
        await store.close()


def _now() -> datetime:
    return datetime.now(UTC)


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: the service stops all its parts together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def serve(
    parts: Foundation,
    *,
    temporal_address: str,
    run_api: bool,
    run_worker: bool,
    stop: asyncio.Event,
    on_ready: asyncio.Future[None] | None = None,
) -> None:
    settings = parts.settings
    tasks: list[asyncio.Task] = []
    worker = None
    server = None
    if run_worker:
        client = await connect(temporal_address, settings.temporal.namespace)
        await ensure_search_attributes(client)
        worker = build_worker(
            client,
            task_queue=settings.temporal.task_queue,
            store=parts.store,
            teams=parts.teams,
            settings=settings,
        )
        tasks.append(asyncio.create_task(worker.run(), name="worker"))
    if run_api:
        gateway = TemporalGateway(temporal_address, settings.temporal.namespace, settings.temporal.task_queue)
        app = create_app(Services(settings=settings, store=parts.store, temporal=gateway, teams=parts.teams))
        config = uvicorn.Config(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level=settings.server.log_level.lower(),
            access_log=False,
            lifespan="off",
        )
        server = _Server(config)
        tasks.append(asyncio.create_task(server.serve(), name="api"))
    if on_ready is not None:
        if server is not None:
            while not server.started and not any(task.done() for task in tasks):
                await asyncio.sleep(0.05)
        on_ready.set_result(None)
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    if server is not None:
        server.should_exit = True
    if worker is not None:
        with contextlib.suppress(Exception):
            await worker.shutdown()
    stopper.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if task is not stopper and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


def check_api_port(settings: Settings) -> None:
    server = settings.server
    if not port_is_free(server.host, server.port):
        raise DevServerError(
            f"port {server.port} on {server.host} is already in use: set {server.variable('port')} to a free port"
        )


def _say(text: str) -> None:
    """Unbuffered, so the banner shows at once when output goes to a file or a log collector."""
    print(text, flush=True)


async def run_dev(settings: Settings, print_fn: Callable[[str], None] = _say) -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    check_api_port(settings)
    async with foundation(settings) as parts:
        dev: DevServer | None = None
        address = settings.temporal.address
        if address is None:
            temporal = settings.temporal
            dev = DevServer(settings.store.data_dir, port=temporal.port, ui_port=temporal.ui_port)
            print_fn(f"Starting the Temporal dev server on {dev.address} …")
            await dev.start()
            address = dev.address
        token_note = await _dev_token(parts)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def banner() -> None:
            await ready
            base = settings.server.resolved_public_url
            lines = [
                "",
                "Post-mortem autopilot is running",
                f"  API          {base}   (OpenAPI docs: {base}/docs)",
                f"  Webhooks     {base}/webhooks/pagerduty   {base}/webhooks/opsgenie",
                f"  Temporal     {address}" + ("   (embedded dev server)" if dev else ""),
            ]
            if dev:
                lines.append(f"  Temporal UI  {dev.ui_url}")
            lines += [f"  Data folder  {settings.store.data_dir.resolve()}", *token_note, "Press Ctrl-C to stop.", ""]
            print_fn("\n".join(lines))

        banner_task = asyncio.create_task(banner())
        try:
            await serve(parts, temporal_address=address, run_api=True, run_worker=True, stop=stop, on_ready=ready)
        finally:
            banner_task.cancel()
            if dev is not None:
                await dev.stop()
            print_fn("Stopped.")


async def _dev_token(parts: Foundation) -> list[str]:
    """A first run has no way in: make an admin token and show it once."""
    if await parts.store.tokens.any_active():
        return ["  API token    use yours (`postmortem token create --role admin` makes another)"]
    _, secret = await parts.store.tokens.create("dev-admin", Role.ADMIN, _now())
    return [f"  API token    {secret}   (admin; shown once — `postmortem token create` makes more)"]
