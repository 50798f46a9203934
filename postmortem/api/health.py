"""Liveness and readiness: /healthz says the process answers, /readyz that its dependencies do.

/readyz also reports the inbox's backlog (deliveries waiting for Temporal) and the age of the
oldest. A backlog does not make the service "not ready": the inbox exists so that webhooks are
still taken while Temporal is away, and taking them is exactly what a load balancer should keep
sending us; whether Temporal answers is the `temporal` check.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from postmortem.api.deps import ServicesDep
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "not ready: a dependency does not answer (the same body as 200, saying which)",
            "content": {"application/json": {"schema": {"type": "object", "required": ["status", "checks"]}}},
        }
    },
)
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
        {"status": "ready" if ready else "not ready", "checks": checks, "inbox": await _inbox(services)},
        status_code=200 if ready else 503,
    )


async def _inbox(services: Services) -> dict[str, int | float | None]:
    try:
        backlog, oldest = await services.store.inbox.backlog(datetime.now(UTC))
    except Exception:  # the database check above already says why
        return {"backlog": None, "oldest_age_seconds": None}
    return {"backlog": backlog, "oldest_age_seconds": round(oldest, 3)}
