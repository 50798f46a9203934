"""Liveness and readiness: /healthz says the process answers, /readyz that its dependencies do."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from postmortem.api.deps import ServicesDep
from postmortem.app.gateway import TemporalUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await services.store.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready", and says which
        checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"
    try:
        await services.temporal.ping()
        checks["temporal"] = "ok"
    except TemporalUnavailable as exc:
        checks["temporal"] = f"unreachable: {exc}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
