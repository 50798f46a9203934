"""Every route of one report answers 404 to a caller who may not see the report.

The routes come from the routing table, not from a list here, so a route added later is covered
without editing this file; each gets a plausible request (real ids in the path, the required query
parameters, a minimal valid body from its OpenAPI schema), so a missing check shows up as a 2xx.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from postmortem.models import ActionItemStatus, Priority, Status, Visibility
from postmortem.review.lifecycle import Review, ReviewerState
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_visibility_api import token
from tests.factories import new_postmortem, pagerduty_event
from tests.image_samples import png

PARAM = re.compile(r"{(\w+)(?::\w+)?}")
ROLE_REFUSED = "this action needs the "


class HiddenReport:
    """A report of team payments with one action item, comment and image, and its path values."""

    def __init__(self, pm_id: str, values: dict[str, str], version: int) -> None:
        self.id = pm_id
        self.values = values
        self.version = version


async def hidden_report(api: Api, incident_id: str, visibility: Visibility) -> HiddenReport:
    now = datetime.now(UTC)
    pm, _ = await api.store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(incident_id).incident, team="payments")
    )
    pm = await api.store.postmortems.update(
        pm.id, pm.version, PostmortemChanges(visibility=visibility, author="author@example.com"), now
    )
    item = await api.store.postmortems.add_action_item(
        pm.id,
        description="Alert on queue depth",
        owner=None,
        due_date=None,
        priority=Priority.MEDIUM,
        status=ActionItemStatus.OPEN,
        now=now,
    )
    comment = await api.store.review.add_comment(
        pm.id, section=pm.sections[0].key, author="author@example.com", body="Is this right?", parent_id=None, now=now
    )
    image, _ = await api.store.images.add(pm.id, png(), "image/png", "graph.png", now, max_images=100)
    pm = await api.store.postmortems.get(pm.id)
    values = {"postmortem_id": pm.id, "item_id": item.id, "comment_id": comment.id, "image_id": image.id}
    return HiddenReport(pm.id, values, pm.version)


# Values for fields whose schema alone allows nonsense (any string), so that requests look real.
HINTS: dict[str, Any] = {
    "section": "summary",
    "incident_id": "PWALK1",
    "comment": "Looks right to me",
    "description": "Add a runbook for the failover",
    "reviewers": ["reviewer@example.com"],
}


def sample(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A minimal value that satisfies `schema` (the required fields only), for a plausible request."""
    if "$ref" in schema:
        return sample(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            options = [option for option in schema[combinator] if option.get("type") != "null"]
            return sample(options[0], components)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: HINTS[name] if name in HINTS else sample(properties.get(name, {}), components)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return [sample(schema.get("items", {}), components)] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()
    if schema.get("format") == "date":
        return (date.today() + timedelta(days=7)).isoformat()
    return "reviewer@example.com"


def report_routes(api: Api) -> list[tuple[str, str]]:
    """(method, path) of every endpoint whose path names a report, from the app's routing table.

    `app.routes` holds the included routers lazily; `iter_route_contexts` is how FastAPI itself walks
    them (its OpenAPI generation does), with each route's full path.
    """
    routes = [
        (method, route.path)
        for route in iter_route_contexts(api.app.routes)
        if isinstance(route.original_route, APIRoute) and route.path and "{postmortem_id}" in route.path
        for method in sorted(route.methods or ())
    ]
    assert len(routes) > 20, f"the routing table has fewer report routes than expected: {routes}"
    return routes


def build_request(api: Api, method: str, path: str, report: HiddenReport) -> dict[str, Any]:
    """Keyword arguments for httpx: the path filled in, required query parameters, a minimal body."""
    openapi = api.app.openapi()
    components = openapi.get("components", {}).get("schemas", {})
    operation = openapi["paths"].get(path, {}).get(method.lower(), {})
    url = PARAM.sub(lambda match: report.values.get(match.group(1), "1"), path)
    params = {
        parameter["name"]: sample(parameter.get("schema", {}), components)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter.get("required")
    }
    request: dict[str, Any] = {"method": method, "url": url, "params": params}
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        request["json"] = sample(content["application/json"]["schema"], components)
    elif "multipart/form-data" in content:
        fields = content["multipart/form-data"]["schema"].get("required", [])
        request["files"] = {name: ("graph.png", png(width=2), "image/png") for name in fields}
    return request


@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.TEAM])
async def test_every_report_route_hides_a_report_from_who_may_not_see_it(api: Api, visibility: Visibility) -> None:
    report = await hidden_report(api, f"PHIDE{visibility.value.upper()}", visibility)
    outsider = await token(api, "outsider@example.com", Role.EDITOR, team="search")
    headers = {**outsider, "If-Match": f'"{report.version}"', "Idempotency-Key": "walk"}
    routes = report_routes(api)
    wrong: list[str] = []
    for method, path in routes:
        response = await api.http.request(headers=headers, **build_request(api, method, path, report))
        is_json = "json" in response.headers.get("content-type", "")
        payload = response.json() if is_json else None
        detail = payload.get("detail") if isinstance(payload, dict) else None
        hidden = response.status_code == 404 and detail == f"no post-mortem {report.id!r}"
        # 403 for the caller's role says nothing about the report; any other answer does.
        refused = response.status_code == 403 and str(detail).startswith(ROLE_REFUSED)
        if not (hidden or refused):
            body = response.text[:200] if is_json else f"<{len(response.content)} bytes>"
            wrong.append(f"{method} {path}: {response.status_code} {body}")
    listing = "\n".join(wrong)
    assert not wrong, f"{len(wrong)} of {len(routes)} report routes answer a caller who may not see it:\n{listing}"
    if visibility == Visibility.TEAM:  # its own team gets past the check: the requests are plausible
        teammate = await token(api, "mate@example.com", Role.VIEWER, team="payments")
        for method, path in report_routes(api):
            if method == "GET":
                response = await api.http.request(headers=teammate, **build_request(api, method, path, report))
                hidden = response.status_code == 404 and response.json()["detail"] == f"no post-mortem {report.id!r}"
                assert not hidden, f"GET {path} hides the report from its own team"


LEAKS = [
    ("GET", "/review", None),
    ("GET", "/action-items", None),
    ("POST", "/action-items", {"json": {"description": "Add a runbook"}}),
    ("GET", "/action-items/{item_id}", None),
    ("PATCH", "/action-items/{item_id}", {"json": {"status": "COMPLETED"}}),
    ("DELETE", "/action-items/{item_id}", None),
    ("GET", "/images", None),
    ("GET", "/images/{image_id}", None),
    ("POST", "/images", {"files": {"file": ("other.png", png(width=3), "image/png")}}),
    ("DELETE", "/images/{image_id}", None),
    ("POST", "/comments", {"json": {"section": "summary", "body": "leaked?"}}),
    ("POST", "/comments/{comment_id}/resolve", None),
]


async def test_the_routes_that_leaked_a_private_report_answer_404(api: Api) -> None:
    report = await hidden_report(api, "PLEAK", Visibility.PRIVATE)
    outsider = await token(api, "outsider@example.com", Role.EDITOR, team="search")
    teammate = await token(api, "mate@example.com", Role.EDITOR, team="payments")
    base = f"/api/postmortems/{report.id}"
    for method, path, body in LEAKS:
        url = base + path.format(**report.values)
        for caller in (outsider, teammate):
            response = await api.http.request(method, url, headers={**caller, "If-Match": '"1"'}, **(body or {}))
            assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
            assert response.json()["detail"] == f"no post-mortem {report.id!r}"
    # Those who may see it still do: its author, an admin, and a reviewer (by name, any case).
    await api.store.review.save(
        report.id,
        Review(status=Status.IN_REVIEW, reviewers=[ReviewerState(reviewer="Rita@Example.com")]),
        datetime.now(UTC),
    )
    reviewer = await token(api, "rita@example.com", Role.VIEWER, team="search")
    author = await token(api, "author@example.com", Role.EDITOR)
    for caller in (author, reviewer, api.auth(Role.ADMIN)):
        for path in ("/review", "/action-items", "/images", "/comments", "/timeline"):
            response = await api.http.get(base + path, headers=caller)
            assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    resolved = await api.http.post(f"{base}/comments/{report.values['comment_id']}/resolve", headers=author)
    assert resolved.status_code == 200 and resolved.json()["resolved_by"] == "author@example.com"


async def test_an_unknown_report_answers_404_on_its_routes(api: Api) -> None:
    for path in ("", "/review", "/action-items", "/images", "/comments", "/meeting", "/timeline"):
        response = await api.http.get(f"/api/postmortems/pagerduty-NOPE{path}", headers=api.auth(Role.ADMIN))
        assert response.status_code == 404 and response.json()["detail"] == "no post-mortem 'pagerduty-NOPE'", path


async def test_a_missing_or_bad_token_is_refused_before_the_report_is_looked_up(api: Api) -> None:
    report = await hidden_report(api, "PAUTH", Visibility.PRIVATE)
    url = f"/api/postmortems/{report.id}/review"
    missing = await api.http.get(url)
    assert missing.status_code == 401 and missing.json()["detail"].startswith("missing Authorization header")
    unknown = await api.http.get(url, headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == "unknown or revoked API token"
    viewer = await api.http.post(f"{url.rsplit('/', 1)[0]}/publish", headers=api.auth(Role.VIEWER))
    assert viewer.status_code == 403
    assert viewer.json()["detail"] == "this action needs the editor role; token 'viewer' has viewer"


def test_the_sampler_gives_valid_values() -> None:
    components = {"Body": {"type": "object", "required": ["start"], "properties": {"start": {"format": "date-time"}}}}
    body = sample({"$ref": "#/components/schemas/Body"}, components)
    assert datetime.fromisoformat(body["start"]) > datetime.now(UTC)
    assert sample({"anyOf": [{"type": "null"}, {"enum": ["md", "html"]}]}, {}) == "md"
    assert sample({"type": "array", "items": {"type": "string"}, "minItems": 1}, {}) == ["reviewer@example.com"]
