"""Every error is JSON with a `detail` that says what is wrong; nothing leaks a stack trace.

Also where the errors are documented: `ErrorBody` is every error's answer (FastAPI's own 422 keeps
its list of field errors: `ValidationErrorBody`), and `document_errors` adds to the OpenAPI the
statuses each route's dependencies and body can answer (401/403 by its caller, 404 by its report,
400/413/415/422 by its body), so a route only documents what it raises itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from postmortem.api import deps
from postmortem.api.etags import IF_MATCH
from postmortem.app.gateway import TemporalRefused, TemporalUnavailable, UpdateRejected, WorkflowGone
from postmortem.config import LimitsSettings
from postmortem.store.postmortems import InvalidCursor, NotFound, VersionConflict
from postmortem.webhooks.errors import WebhookRejected

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """What every error answers: what is wrong, in words."""

    detail: str


class StaleVersionBody(ErrorBody):
    """412: the If-Match was stale; the current version (also in the ETag header) to fetch again."""

    current_version: int


class FieldError(BaseModel):
    """One entry of FastAPI's validation answer: where (`loc`), what (`msg`, `type`), and the input."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorBody(BaseModel):
    """422: FastAPI's list of field errors for a parameter or body that does not fit its schema, or a
    sentence (the field's JSON path for text with NUL or a lone surrogate; a value this resource refuses)."""

    detail: str | list[FieldError] = Field(description="a sentence, or one entry per invalid field")


def error(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    """One documented error answer, for a route's `responses=`."""
    return {"model": model, "description": description}


def invalid(description: str) -> dict[str, Any]:
    """A documented 422: a route's own refusal, or FastAPI's validation (the body says which)."""
    return error(description, ValidationErrorBody)


TEMPORAL_UNAVAILABLE = error("Temporal is unavailable: nothing changed; retry later (Retry-After)")
WORKFLOW_REFUSED = error("the workflow refused the change (wrong state, or its workflow has finished)")
STALE: dict[int | str, dict[str, Any]] = {
    400: error("malformed If-Match header"),
    412: error("stale If-Match: the resource changed since it was read", StaleVersionBody),
    428: error("no If-Match header: send the ETag you read"),
}
"""What `etags.required_version` and a versioned update answer."""


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at `path` (FastAPI keeps one route per method)."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        if route.path_regex.match(path):
            methods |= set(route.methods or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        """Routing's 404 and 405 (with Allow), FastAPI's and our HTTPExceptions: JSON, never text."""
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the one route it matched; the resource has every route on its path.
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's own answer (documented as ValidationErrorBody), registered here so it stays ours."""
        return await request_validation_exception_handler(request, exc)

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

    @app.exception_handler(TemporalRefused)
    async def _temporal_refused(_: Request, exc: TemporalRefused) -> JSONResponse:
        # Temporal judged the request itself (e.g. a payload over its size limit): retrying cannot help.
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(UpdateRejected)
    async def _rejected_update(_: Request, exc: UpdateRejected) -> JSONResponse:
        # The workflow's validator says why and with which status (403 wrong caller, 409 wrong state, 422 bad input).
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(WorkflowGone)
    async def _gone(_: Request, exc: WorkflowGone) -> JSONResponse:
        return JSONResponse({"detail": f"this post-mortem's workflow is no longer running: {exc}"}, status_code=409)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)


# The OpenAPI: every status a route can answer, with its body ----------------------------------

_ROLE = "the token's role is below what this action needs"
_CALLERS: dict[Callable[..., Any], dict[int, str]] = {
    deps.viewer_caller: {401: "no valid API token (missing, malformed, unknown or revoked)"},
    deps.editor_caller: {401: "no valid API token (missing, malformed, unknown or revoked)", 403: _ROLE},
    deps.reviewer_caller: {401: "no valid API token (missing, malformed, unknown or revoked)", 403: _ROLE},
    deps.admin_caller: {401: "no valid API token (missing, malformed, unknown or revoked)", 403: _ROLE},
}
_REPORTS = {deps.visible_report, deps.editable_report, deps.admin_report}


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        if current.call is not None:
            found.add(current.call)
        stack.extend(current.dependencies)
    return found


def _has_parameters(dependant: Dependant) -> bool:
    stack = [dependant]
    while stack:
        current = stack.pop()
        if current.path_params or current.query_params or current.header_params or current.cookie_params:
            return True
        stack.extend(current.dependencies)
    return False


def derived_errors(route: Any) -> dict[int, str]:
    """The statuses a route answers through what it depends on, not through its own code."""
    dependant: Dependant = route.dependant
    calls = _calls(dependant)
    found: dict[int, str] = {}
    for caller, statuses in _CALLERS.items():
        if caller in calls:
            found.update(statuses)
    if "{" in route.path_format:
        found[404] = "nothing has this id (a report also answers 404 when the caller may not see it)"
    if calls & _REPORTS:
        found[404] = "no such report, or one the caller may not see"
    if route.body_field is not None:
        depth, size = LimitsSettings.variable("json_max_depth"), LimitsSettings.variable("api_max_bytes")
        found[400] = f"the body is not UTF-8 JSON, or it nests deeper than {depth}"
        found[413] = f"the body is over {size}"
        found[415] = "the body is not application/json"
    if route.body_field is not None or _has_parameters(dependant):
        found[422] = "a parameter or field is invalid: FastAPI's field errors, or a sentence naming the field"
    return found


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}


def _add_components(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, StaleVersionBody, ValidationErrorBody):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in model_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, model_schema)


def _document(app: FastAPI, schema: dict[str, Any]) -> None:
    _add_components(schema)
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        derived = derived_errors(route)
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses: dict[str, Any] = operation["responses"]
            for status, description in derived.items():
                documented = responses.get(str(status))
                if documented is None:
                    model = ValidationErrorBody if status == 422 else ErrorBody
                    responses[str(status)] = {"description": description, "content": _ref(model)}
                elif documented.get("description") == "Validation Error":  # FastAPI's own wording
                    documented["description"] = description
                elif status in (400, 422) and description not in documented.get("description", ""):
                    # Both causes answer: the route's own (If-Match, a field it refuses) and the body's.
                    documented["description"] = f"{documented.get('description')}; or {description}"
            if "422" in responses and 422 in derived:  # FastAPI's own validation can answer: its shape too
                responses["422"]["content"] = _ref(ValidationErrorBody)
            for parameter in operation.get("parameters", []):
                # Optional to FastAPI, so that its absence is our 428 (RFC 6585), not FastAPI's 422.
                if parameter["in"] == "header" and parameter["name"].lower() == IF_MATCH.lower():
                    parameter["required"] = True
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)


def document_errors(app: FastAPI) -> None:
    """Make the app's OpenAPI document every error status of every route (see the module's docstring)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document(app, generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
