"""The fakes' shared machinery: the front door every fake app has (`fake_app`), resetting a fake's
state, switching a fake into an outage and back (`Switchable`), recording requests, and running an
ASGI app on a loopback port inside the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

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
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_app(app: ASGIApp, *, timeout: float = 10.0) -> AsyncIterator[str]:
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


@dataclass(frozen=True)
class Outage:
    """A fake that keeps failing: every request (or those under `path`) answers `kind` until healed."""

    kind: Any  # what the fake's failure() answers, as in fail_next; or (status, JSON body) verbatim
    path: str | None = None  # only requests whose path starts with this; None: every request


class Switchable:
    """`fail_with` / `heal` for a fake's state (a dataclass with `outage` and `fail_next` fields).

    A test (or an end-to-end run) breaks the outside system, sees what the service makes of it, heals
    it and retries: unlike `fail_next`, an outage lasts for any number of requests (retries included).
    `refused` counts the requests the outage answered, so a test can tell the fake was really asked.
    """

    outage: Outage | None
    fail_next: list[Any]
    refused: int

    def fail_with(self, kind: Any, *, path: str | None = None) -> None:
        """Answer `kind` (the fake's own failure kinds, or `(status, body)` verbatim) from now on."""
        self.outage = Outage(kind, path)

    def heal(self) -> None:
        """Serve normally again: the outage and any queued `fail_next` answers are gone."""
        self.outage = None
        self.fail_next.clear()


class FakeState(Protocol):
    """What `fake_app` reads of a fake's state (a dataclass reset with `reset_fake`)."""

    requests: list[Recorded]
    fail_next: list[Any]  # answers to give next, in order, instead of serving: each fake says what they mean
    epoch: int


def fake_app(
    state: FakeState,
    *,
    failure: Callable[[Any], Response],
    authorized: Callable[[Request], bool] | None = None,
    unauthorized: Callable[[], Response] | None = None,
    headers: Callable[[], Mapping[str, str]] | None = None,
) -> FastAPI:
    """A FastAPI app whose every request passes the same front door, in this order:

    1. it is recorded in `state.requests`, as it arrived;
    2. it waits `state.delay_seconds` when the fake has that field and it is set — and answers 503
       untouched if `reset_fake` ran meanwhile (a later test owns the state now);
    3. `authorized(request)` False answers `unauthorized()` (fakes whose endpoints check
       credentials themselves, like Slack's token in the form, pass no `authorized`);
    4. a queued `state.fail_next` answers `failure(its head)`;
    5. a `state.outage` (`Switchable.fail_with`) that covers the path answers `failure(its kind)`, or
       its `(status, body)` as JSON, every time until `heal()`;
    6. the fake's route serves it, and `headers()` are added where the route set none (rate limits).
    """
    if authorized is not None and unauthorized is None:
        raise ValueError("a fake that checks credentials needs its unauthorized answer")
    app = FastAPI()

    @app.middleware("http")
    async def gate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        state.requests.append(await record(request))
        delay = getattr(state, "delay_seconds", 0.0)
        if delay:
            epoch = state.epoch
            await asyncio.sleep(delay)
            if state.epoch != epoch:
                return Response(status_code=503)
        if authorized is not None and not authorized(request):
            assert unauthorized is not None
            return unauthorized()
        if state.fail_next:
            return failure(state.fail_next.pop(0))
        outage: Outage | None = getattr(state, "outage", None)
        if outage is not None and (outage.path is None or request.url.path.startswith(outage.path)):
            state.refused = getattr(state, "refused", 0) + 1  # type: ignore[attr-defined]
            if isinstance(outage.kind, tuple):
                status, body = outage.kind
                return JSONResponse(body, status_code=status)
            return failure(outage.kind)
        response = await call_next(request)
        for name, value in (headers() if headers else {}).items():
            response.headers.setdefault(name, value)
        return response

    return app
