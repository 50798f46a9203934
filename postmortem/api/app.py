"""The FastAPI application: REST API, webhooks, health."""

from __future__ import annotations

from fastapi import FastAPI

from postmortem.api import (
    action_items,
    coedit,
    health,
    images,
    inbox,
    meeting,
    metrics,
    postmortems,
    problems,
    prometheus,
    review,
    templates,
    timeline,
    tokens,
)
from postmortem.api.errors import document_errors, install_error_handlers
from postmortem.api.limits import BodyLimits
from postmortem.api.services import Services
from postmortem.web import routes as web
from postmortem.webhooks import router as webhooks


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Post-mortem autopilot",
        version="0.1.0",
        description="Resolved incidents become drafted, reviewed and tracked post-mortems. "
        "Send `Authorization: Bearer <token>` to every /api route.",
        docs_url=None,  # served by postmortem.web from a package's files, not a CDN
        redoc_url=None,
    )
    app.state.services = services
    app.state.coedit = coedit.Rooms(services)
    install_error_handlers(app)
    document_errors(app)
    # Outside the routes and their exception handlers: a body over the limits is refused before any route reads it.
    app.add_middleware(BodyLimits, limits=services.settings.limits, upload_cap=images.MAX_BODY)
    app.add_middleware(prometheus.RequestTimer)  # outermost: a refused body is timed too
    routers = (
        health,
        webhooks,
        postmortems,
        coedit,
        action_items,
        timeline,
        meeting,
        review,
        problems,
        templates,
        images,
        tokens,
        metrics,
        inbox,
        prometheus,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(web.public)
    web.install(app)
    app.include_router(action_items.overview)
    return app
