"""The `postmortem` command: `dev` runs everything in one process tree; `api` and `worker` run apart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import typer

from postmortem.app.devserver import DevServerError
from postmortem.app.logs import configure_logging
from postmortem.app.runtime import check_api_port, foundation, load_teams, run_dev, serve, stop_on_signals
from postmortem.app.settings import Settings
from postmortem.app.temporal import SearchAttributeMissing, TemporalConfigError, TemporalConnection, resolve_connection
from postmortem.app.worker_process import WorkerProcessError, stop_when_orphaned
from postmortem.app.worker_telemetry import WorkerMetricsError
from postmortem.incident.teams_file import TeamsFileError
from postmortem.store.database import SchemaNotCurrent
from postmortem.store.postmortems import NotFound
from postmortem.store.tokens import Role

app = typer.Typer(
    help="Post-mortem autopilot. Every setting is a POSTMORTEM_* environment variable (see README).",
    no_args_is_help=True,
)
token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValueError as exc:
        typer.echo(f"error: invalid setting: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.server.log_level, settings.server.log_format)
    return settings


def _run(coroutine) -> None:  # type: ignore[no-untyped-def]
    try:
        asyncio.run(coroutine)
    except (TeamsFileError, DevServerError, TemporalConfigError, WorkerMetricsError, SchemaNotCurrent) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except SearchAttributeMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except WorkerProcessError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except RuntimeError as exc:
        if "Failed client connect" in str(exc) or "connect" in str(exc).lower():
            typer.echo(f"error: cannot reach Temporal: {exc}", err=True)
            raise typer.Exit(2) from exc
        raise


def _external_temporal(settings: Settings) -> TemporalConnection:
    """`api` and `worker` always talk to a running Temporal: by default the one on this machine's port."""
    connection = resolve_connection(settings.temporal, default_address=f"127.0.0.1:{settings.temporal.port}")
    assert connection is not None
    return connection


@app.command()
def dev() -> None:
    """Everything on one machine: Temporal dev server, worker (its own process) and API, with a SQLite store in the data folder."""
    _run(run_dev(_settings()))


@app.command()
def api() -> None:
    """The HTTP API and webhooks only, against POSTMORTEM_TEMPORAL_ADDRESS (default 127.0.0.1:7233)."""
    settings = _settings()

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        check_api_port(settings)
        async with foundation(settings) as parts:
            await serve(parts, temporal=_external_temporal(settings), run_api=True, run_worker=False, stop=stop)

    _run(main())


@app.command()
def worker(
    exit_with_parent: int | None = typer.Option(
        None, hidden=True, help="stop when the process of this pid is no longer our parent (`postmortem dev`)"
    ),
) -> None:
    """The Temporal worker only, against POSTMORTEM_TEMPORAL_ADDRESS (default 127.0.0.1:7233)."""
    settings = _settings()

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        orphaned = asyncio.create_task(stop_when_orphaned(exit_with_parent, stop)) if exit_with_parent else None
        try:
            async with foundation(settings) as parts:
                await serve(parts, temporal=_external_temporal(settings), run_api=False, run_worker=True, stop=stop)
        finally:
            if orphaned is not None:
                orphaned.cancel()

    _run(main())


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema, once, before replicas that do not (POSTMORTEM_MIGRATE_ON_START=false)."""
    settings = _settings()

    async def main() -> None:
        async with foundation(settings, migrate=True):
            typer.echo(f"database schema is up to date ({settings.store.resolved_database_url.split('://')[0]})")

    _run(main())


@app.command("check-config")
def check_config() -> None:
    """Validate the settings and the teams file, and exit."""
    settings = _settings()
    try:
        load_teams(settings)
    except TeamsFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("configuration is valid")


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., help="who or what uses the token"),
    role: Role = typer.Option(Role.VIEWER, help="viewer, editor, reviewer or admin"),
    team: str = typer.Option(None, help="the team whose team-visible reports this token sees"),
) -> None:
    """Create a token and print its secret (shown only now)."""
    settings = _settings()

    async def main() -> None:
        async with foundation(settings) as parts:
            info, secret = await parts.store.tokens.create(name, role, datetime.now(UTC), team=team)
            typer.echo(f"id: {info.id}\nrole: {info.role.value}\ntoken: {secret}")

    _run(main())


@token_app.command("list")
def token_list() -> None:
    settings = _settings()

    async def main() -> None:
        async with foundation(settings) as parts:
            for info in await parts.store.tokens.list():
                state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
                typer.echo(f"{info.id}  {info.role.value:<8}  {state:<18}  {info.name}")

    _run(main())


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    settings = _settings()

    async def main() -> None:
        async with foundation(settings) as parts:
            try:
                await parts.store.tokens.revoke(token_id, datetime.now(UTC))
            except NotFound as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from exc
            typer.echo(f"revoked {token_id}")

    _run(main())


if __name__ == "__main__":  # `python -m postmortem.app.cli …`: how `postmortem dev` starts its worker process
    app()
