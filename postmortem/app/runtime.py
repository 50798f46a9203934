"""Start-up and shut-down of the service's parts, shared by `postmortem dev`, `api` and `worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import uvicorn
from temporalio.client import Client
from temporalio.worker import Worker

from postmortem.activities.clients import OutsideClients
from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.devserver import DevServer, DevServerError, port_is_free
from postmortem.app.gateway import TemporalGateway
from postmortem.app.http_clients import outside_clients
from postmortem.app.relay import Relay
from postmortem.app.settings import Settings
from postmortem.app.temporal import (
    TemporalConnection,
    connect,
    ensure_search_attributes,
    resolve_connection,
    without_temporal_environment,
)
from postmortem.app.tracing import Tracing
from postmortem.app.worker import build_worker
from postmortem.app.worker_process import WorkerProcess
from postmortem.app.worker_telemetry import worker_runtime
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
async def foundation(settings: Settings, *, migrate: bool | None = None) -> AsyncIterator[Foundation]:
    """Teams file checked, data folder made, schema migrated (or checked), bootstrap token registered.

    `migrate` None follows POSTMORTEM_MIGRATE_ON_START; `postmortem migrate` passes True.
    """
    teams = load_teams(settings)
    settings.store.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(
        settings.store.resolved_database_url,
        schema=settings.store.database_schema,
        migrate_schema=settings.store.migrate_on_start if migrate is None else migrate,
    )
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


# A worker that ended with an error is rebuilt after this delay, doubling while it keeps failing.
WORKER_RESTART_DELAY_FIRST = 0.5
WORKER_RESTART_DELAY_MAX = 30.0


class SupervisedWorker:
    """The Temporal worker, rebuilt whenever `Worker.run()` ends with an error, until `shutdown()`.

    The SDK rides out a server that is away (its polls retry `Unavailable` without end: measured with
    the dev server SIGKILLed for 100 s), but a fatal worker error — a failed validation at start, a
    poller giving up — ends `run()` for good, and with it the only thing that moves workflows. So
    that one error cannot end `postmortem dev` (or `postmortem worker`), a new worker is built once
    Temporal answers again, with a growing delay while it keeps failing. It gets a new client too:
    a worker that failed its validation stays registered on its client, which then refuses a second
    worker for the same task queue ("Registration of multiple workers … not allowed").
    """

    def __init__(
        self, client: Client, build: Callable[[Client], Worker], reconnect: Callable[[], Awaitable[Client]]
    ) -> None:
        self._client = client
        self._build = build
        self._reconnect = reconnect
        self._worker: Worker | None = None
        self._stopping = False
        self.restarts = 0

    async def run(self) -> None:
        delay = WORKER_RESTART_DELAY_FIRST
        client: Client | None = self._client
        while not self._stopping:
            if client is None:
                client = await self._connect()
                if client is None:
                    return  # shut down while waiting for Temporal
                self.restarts += 1
            self._worker = self._build(client)
            try:
                await self._worker.run()
                return  # shutdown() was called
            except Exception as exc:
                if self._stopping:
                    return
                log.warning("the Temporal worker stopped (%s); starting a new one in %g s", _short(exc), delay)
            client = None
            await self._pause(delay)
            delay = min(delay * 2, WORKER_RESTART_DELAY_MAX)

    async def _connect(self) -> Client | None:
        """A new client, as soon as Temporal accepts one; None if shut down meanwhile."""
        delay = WORKER_RESTART_DELAY_FIRST
        while not self._stopping:
            try:
                return await self._reconnect()
            except Exception:  # unreachable still: the outage itself is logged by whoever sees it first
                await self._pause(delay)
                delay = min(delay * 2, WORKER_RESTART_DELAY_MAX)
        return None

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when shutdown() is called."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self._stopping and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(min(0.1, seconds))

    async def shutdown(self) -> None:
        self._stopping = True
        worker = self._worker
        if worker is not None:
            with contextlib.suppress(RuntimeError):  # "never started" / already failed: nothing to stop
                await worker.shutdown()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + " …"


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def serve(
    parts: Foundation,
    *,
    temporal: TemporalConnection,
    run_api: bool,
    run_worker: bool,
    stop: asyncio.Event,
    on_ready: asyncio.Future[None] | None = None,
) -> None:
    """The API (with the inbox's relay) and/or the worker, in this process, until `stop` or a part fails.

    A worker's clients of the outside world (one per configured system) are opened here, before the
    worker, and closed after it has stopped.
    """
    clients = outside_clients(parts.settings) if run_worker else None
    try:
        await _serve(
            parts,
            clients,
            temporal=temporal,
            run_api=run_api,
            stop=stop,
            on_ready=on_ready,
        )
    finally:
        if clients is not None:
            await clients.aclose()


async def _serve(
    parts: Foundation,
    clients: OutsideClients | None,
    *,
    temporal: TemporalConnection,
    run_api: bool,
    stop: asyncio.Event,
    on_ready: asyncio.Future[None] | None,
) -> None:
    settings = parts.settings
    tracing = Tracing.from_environment()  # OTEL_*: off unless an exporter is named
    try:
        await _run_parts(
            parts, clients, settings, tracing, temporal=temporal, run_api=run_api, stop=stop, on_ready=on_ready
        )
    finally:
        tracing.shutdown()


async def _run_parts(
    parts: Foundation,
    clients: OutsideClients | None,
    settings: Settings,
    tracing: Tracing,
    *,
    temporal: TemporalConnection,
    run_api: bool,
    stop: asyncio.Event,
    on_ready: asyncio.Future[None] | None,
) -> None:
    tasks: list[asyncio.Task] = []
    worker: SupervisedWorker | None = None
    server = None
    relay: asyncio.Task[None] | None = None
    if clients is not None:
        runtime = worker_runtime(settings.server.worker_metrics_address)  # one listener for every client
        client = await connect(temporal, runtime=runtime, interceptors=tracing.temporal_interceptors())
        await ensure_search_attributes(client)
        worker = SupervisedWorker(
            client,
            lambda client: build_worker(
                client,
                task_queue=settings.temporal.task_queue,
                store=parts.store,
                teams=parts.teams,
                settings=settings,
                clients=clients,
            ),
            reconnect=lambda: connect(temporal, runtime=runtime, interceptors=tracing.temporal_interceptors()),
        )
        tasks.append(asyncio.create_task(worker.run(), name="worker"))
    if run_api:
        gateway = TemporalGateway(
            temporal, temporal.namespace, settings.temporal.task_queue, interceptors=tracing.temporal_interceptors()
        )
        app = create_app(Services(settings=settings, store=parts.store, temporal=gateway, teams=parts.teams))
        tracing.instrument(app)
        config = uvicorn.Config(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level=settings.server.log_level.lower(),
            access_log=False,
            lifespan="off",
            log_config=None,  # its lines go through our root handler, in POSTMORTEM_LOG_FORMAT
        )
        server = _Server(config)
        tasks.append(asyncio.create_task(server.serve(), name="api"))
        # Every API process relays the inbox its webhooks commit to (leases make replicas safe).
        relay = asyncio.create_task(
            Relay(parts.store, gateway, settings.inbox, history_threshold=settings.temporal.history_threshold).run(),
            name="relay",
        )
        tasks.append(relay)
    if on_ready is not None:
        if server is not None:
            while not server.started and not any(task.done() for task in tasks):
                await asyncio.sleep(0.05)
        on_ready.set_result(None)
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    if server is not None:
        server.should_exit = True
    if relay is not None:
        relay.cancel()  # it runs until cancelled, and gives its leases back as it stops
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
    """Dev server, worker and API in one process tree; the dev server and the worker are restarted if they die.

    The worker runs in a process of its own (`WorkerProcess`), so drafting, rendering and PDFs never
    hold up a webhook on the API's event loop. The worker and the API keep running through a Temporal
    outage: their clients reconnect to the restarted server (same data file, same ports), the webhooks
    keep committing to the inbox, and /readyz says Temporal is unreachable until it is back.
    """
    stop = asyncio.Event()
    stop_on_signals(stop)
    check_api_port(settings)
    temporal = resolve_connection(settings.temporal, default_address=None)
    async with foundation(settings) as parts:
        dev: DevServer | None = None
        supervisors: list[asyncio.Task[None]] = []
        failures: list[BaseException] = []
        worker: WorkerProcess | None = None

        def watch(task: asyncio.Task[None]) -> None:
            """A supervisor that gives up ends the whole service, loudly."""
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())  # type: ignore[arg-type]
                stop.set()

        try:
            if temporal is None:
                ports = settings.temporal
                dev = DevServer(settings.store.data_dir, port=ports.port, ui_port=ports.ui_port)
                print_fn(f"Starting the Temporal dev server on {dev.address} …")
                await dev.start()
                supervisors.append(asyncio.create_task(dev.supervise(stop), name="temporal-dev-server"))
                temporal = TemporalConnection(dev.address)
                # The embedded server speaks plain gRPC: the shell's TEMPORAL_* (for another server) stay out.
                worker = WorkerProcess(
                    settings.store.data_dir, temporal.address, env=without_temporal_environment(os.environ)
                )
            else:
                worker = WorkerProcess(settings.store.data_dir, temporal.address)
            await worker.start()
            supervisors.append(asyncio.create_task(worker.supervise(stop), name="worker-process"))
            for task in supervisors:
                task.add_done_callback(watch)
            connection = temporal
            token_note = await _dev_token(parts)
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            async def banner() -> None:
                await ready
                base = settings.server.resolved_public_url
                lines = [
                    "",
                    "Post-mortem autopilot is running",
                    f"  API          {base}   (OpenAPI docs: {base}/docs)",
                    f"  Webhooks     {base}/webhooks/pagerduty   {base}/webhooks/opsgenie   {base}/webhooks/jsm",
                    f"  Temporal     {connection.describe()}" + ("   (embedded dev server)" if dev else ""),
                ]
                if dev:
                    lines.append(f"  Temporal UI  {dev.ui_url}")
                lines += [
                    f"  Worker       its own process (pid {worker.pid if worker else '?'})",
                    f"  Data folder  {settings.store.data_dir.resolve()}",
                    *token_note,
                    "Press Ctrl-C to stop.",
                    "",
                ]
                print_fn("\n".join(lines))

            banner_task = asyncio.create_task(banner())
            try:
                await serve(parts, temporal=connection, run_api=True, run_worker=False, stop=stop, on_ready=ready)
            finally:
                banner_task.cancel()
        finally:
            for task in supervisors:
                task.remove_done_callback(watch)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if worker is not None:
                await worker.stop()
            if dev is not None:
                await dev.stop()
            print_fn("Stopped.")
        if failures:
            raise failures[0]


async def _dev_token(parts: Foundation) -> list[str]:
    """A first run has no way in: make an admin token and show it once."""
    if await parts.store.tokens.any_active():
        return ["  API token    use yours (`postmortem token create --role admin` makes another)"]
    _, secret = await parts.store.tokens.create("dev-admin", Role.ADMIN, _now())
    return [f"  API token    {secret}   (admin; shown once — `postmortem token create` makes more)"]
