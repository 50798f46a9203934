"""Every error is JSON with a `detail` that says what is wrong; nothing leaks a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from postmortem.app.gateway import TemporalUnavailable, UpdateRejected, WorkflowGone
from postmortem.store.postmortems import InvalidCursor, NotFound, VersionConflict
from postmortem.webhooks.errors import WebhookRejected

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WebhookRejected)
    async def _rejected(_: Request, exc: WebhookRejected) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(VersionConflict)
    async def _conflict(_: Request, exc: VersionConflict) -> JSONResponse:
        return JSONResponse(
            {
                "detail": f"stale If-Match: the resource changed since you read it (now version {exc.current}); "
                "fetch it again and reapply your edit",
                "current_version": exc.current,
            },
            status_code=412,
            headers={"ETag": f'"{exc.current}"'},
        )

    @app.exception_handler(InvalidCursor)
    async def _cursor(_: Request, exc: InvalidCursor) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(TemporalUnavailable)
    async def _temporal(_: Request, exc: TemporalUnavailable) -> JSONResponse:
        return JSONResponse({"detail": f"{exc}; retry later"}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(UpdateRejected)
    async def _rejected_update(_: Request, exc: UpdateRejected) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(WorkflowGone)
    async def _gone(_: Request, exc: WorkflowGone) -> JSONResponse:
        return JSONResponse({"detail": f"this post-mortem's workflow is no longer running: {exc}"}, status_code=409)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)
