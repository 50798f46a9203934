"""Run an ASGI app on a loopback port inside the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, fields

import httpx
import uvicorn
from starlette.requests import Request

from tests.support import free_port

# One TLS context for every test client: building one per client costs ~0.15 s (the CA bundle).
_TLS = ssl.create_default_context()


def loopback_client(timeout: float = 5.0) -> httpx.AsyncClient:
    """An httpx client for the fakes: short timeouts, and no proxy from the environment in the way."""
    return httpx.AsyncClient(timeout=timeout, verify=_TLS, trust_env=False)


def reset_fake(state: object) -> None:
    """Put a fake's state back to its defaults in place (the app serving it keeps the same object).

    `epoch` moves on, so a request still sleeping in `delay_seconds` from an earlier test can tell
    that the world changed under it and answers without touching the new state.
    """
    fresh = type(state)()
    epoch = getattr(state, "epoch", 0)
    for item in fields(fresh):  # type: ignore[arg-type]
        setattr(state, item.name, getattr(fresh, item.name))
    state.epoch = epoch + 1  # type: ignore[attr-defined]


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling (same pattern as postmortem.app.runtime._Server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # type: ignore[override]
        yield


@contextlib.asynccontextmanager
async def serve_app(app, *, timeout: float = 10.0) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """Yield "http://127.0.0.1:PORT" once the server accepts connections; stop it on exit."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name=f"fake-server-{port}")
    deadline = time.monotonic() + timeout
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError(f"the fake server on port {port} stopped before it started")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the fake server on port {port} did not start within {timeout} s")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass(frozen=True)
class Recorded:
    """One request a fake received, as it arrived."""

    method: str
    path: str  # decoded, as the app routed it
    raw_path: str  # as sent on the wire (percent-escapes kept)
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


async def record(request: Request) -> Recorded:
    return Recorded(
        method=request.method,
        path=request.url.path,
        raw_path=request.scope.get("raw_path", b"").decode("latin-1"),
        params=dict(request.query_params),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=await request.body(),
    )
