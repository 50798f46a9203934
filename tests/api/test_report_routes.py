"""Every route of the app keeps a report from a caller who may not see it.

A route of one report answers 404 (or 403 for the caller's role); every other route (lists, their
CSV, metrics, anything added later) neither names the report nor counts it: its answers are the same
with the report there as without it. The routes come from the routing table, not from a list here, so
a route added later is covered without editing this file; each gets plausible requests (real ids in
the path, the required query parameters, each value of its optional enum and boolean parameters, the
hidden report's own team, service and incident as filters, a minimal valid body from its OpenAPI
schema), so a missing check shows up as a 2xx or as a changed answer.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from markupsafe import escape

from postmortem.models import ActionItemStatus, Priority, Status, Visibility
from postmortem.review.lifecycle import Review, ReviewerState, Transition
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.tokens import Role
from postmortem.web.session import link_secret
from postmortem.web.sso_session import SsoSession, seal_session
from tests.api.conftest import Api
from tests.api.test_visibility_api import token
from tests.factories import new_postmortem, pagerduty_event
from tests.image_samples import png

PARAM = re.compile(r"{(\w+)(?::\w+)?}")
ROLE_REFUSED = "this action needs the "
SECRET_TITLE = "Ledger drift in the payouts batch"
SECRET_ITEM = "Alert on queue depth"


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
        pm.id,
        pm.version,
        PostmortemChanges(visibility=visibility, author="author@example.com", title=SECRET_TITLE),
        now,
    )
    item = await api.store.postmortems.add_action_item(
        pm.id,
        description=SECRET_ITEM,
        owner="author@example.com",
        due_date=date.today() - timedelta(days=3),  # overdue: counted by the metrics, flagged in the lists
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


def app_routes(api: Api) -> list[tuple[str, str]]:
    """(method, path) of every endpoint of the app, from its routing table.

    `app.routes` holds the included routers lazily; `iter_route_contexts` is how FastAPI itself walks
    them (its OpenAPI generation does), with each route's full path.
    """
    return [
        (method, route.path)
        for route in iter_route_contexts(api.app.routes)
        if isinstance(route.original_route, APIRoute) and route.path
        for method in sorted(route.methods or ())
    ]


def report_routes(api: Api) -> list[tuple[str, str]]:
    """The endpoints whose path names a report."""
    routes = [(method, path) for method, path in app_routes(api) if "{postmortem_id}" in path]
    assert len(routes) > 20, f"the routing table has fewer report routes than expected: {routes}"
    return routes


def other_routes(api: Api) -> list[tuple[str, str]]:
    """Every other endpoint: lists, exports and metrics across reports, tokens, templates, webhooks, health."""
    routes = [(method, path) for method, path in app_routes(api) if "{postmortem_id}" not in path]
    assert {("GET", "/api/action-items"), ("GET", "/api/metrics"), ("GET", "/api/postmortems")} <= set(routes)
    assert {("GET", "/signin/oidc"), ("GET", "/signin/oidc/callback")} <= set(routes)  # single sign-on: anyone
    return routes


def _operation(api: Api, method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    openapi = api.app.openapi()
    return openapi["paths"].get(path, {}).get(method.lower(), {}), openapi.get("components", {}).get("schemas", {})


def build_request(api: Api, method: str, path: str, values: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments for httpx: the path filled in, required query parameters, a minimal body."""
    operation, components = _operation(api, method, path)
    url = PARAM.sub(lambda match: values.get(match.group(1), "1"), path)
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


def _choices(schema: dict[str, Any], components: dict[str, Any]) -> list[Any]:
    """The values an optional parameter is worth trying: each of an enum's, true for a boolean."""
    if "$ref" in schema:
        return _choices(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return [value for option in schema[combinator] for value in _choices(option, components)]
    if "enum" in schema:
        return list(schema["enum"])
    return [True] if schema.get("type") == "boolean" else []


def request_variants(api: Api, method: str, path: str, filters: dict[str, str]) -> list[dict[str, Any]]:
    """The minimal request, then one per value of each optional enum or boolean query parameter (format=csv,
    overdue=true, every status …) and one per parameter named in `filters` (the hidden report's team …)."""
    base = build_request(api, method, path, {})
    operation, components = _operation(api, method, path)
    variants = [base]
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query" or parameter.get("required"):
            continue
        name = parameter["name"]
        values = _choices(parameter.get("schema", {}), components) + ([filters[name]] if name in filters else [])
        variants += [{**base, "params": {**base["params"], name: value}} for value in values]
    return variants


async def answers(api: Api, headers: dict[str, str], filters: dict[str, str]) -> dict[str, tuple[int, str]]:
    """What every GET route that names no report answers `headers`, request by request."""
    seen: dict[str, tuple[int, str]] = {}
    for method, path in other_routes(api):
        if method != "GET":
            continue
        for request in request_variants(api, method, path, filters):
            response = await api.http.request(headers=headers, **request)
            seen[f"GET {request['url']} {request['params']}"] = (response.status_code, steady(path, response.text))
    return seen


def steady(path: str, text: str) -> str:
    """/metrics times every request and the process itself, so it changes at each call: of it, compare
    what is about the service's data (the inbox, the webhooks), not its self-observation."""
    if path != "/metrics":
        return text
    return "\n".join(
        line for line in text.splitlines() if line.startswith("postmortem_") and not line.startswith("postmortem_http_")
    )


def mentions(text: str, report: HiddenReport) -> list[str]:
    return [secret for secret in (report.id, SECRET_TITLE, SECRET_ITEM) if secret in text]


async def counted(api: Api, report: HiddenReport) -> None:
    """Make the hidden report count in every figure: published 20 h after it was resolved, a cause, a
    follow-up verdict (its action item is overdue already)."""
    pm = await api.store.postmortems.get(report.id)
    assert pm.metrics.closed_at is not None
    await api.store.postmortems.update(
        pm.id, pm.version, PostmortemChanges(cause_category="capacity"), datetime.now(UTC)
    )
    published = Transition(
        action="approve",
        by="author@example.com",
        at=pm.metrics.closed_at + timedelta(hours=20),
        from_status=Status.IN_REVIEW,
        to_status=Status.PUBLISHED,
    )
    await api.store.review.save(
        pm.id, Review(status=Status.PUBLISHED, published_count=1, history=[published]), datetime.now(UTC)
    )
    await api.store.follow_ups.record(pm.id, 90, {"verdict": {"worked": False}}, datetime.now(UTC))


async def test_every_other_route_neither_names_nor_counts_a_hidden_report(api: Api) -> None:
    shown, _ = await api.store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event("PSHOWN").incident, team="search")
    )
    await api.store.postmortems.add_action_item(
        shown.id,
        description="Visible item",
        owner=None,
        due_date=None,
        priority=Priority.LOW,
        status=ActionItemStatus.OPEN,
        now=datetime.now(UTC),
    )
    outsider = await token(api, "outsider@example.com", Role.EDITOR, team="search")
    filters = {"team": "payments", "service": "pig208", "incident_id": "PWALKHIDDEN", "owner": "author@example.com"}
    before = await answers(api, outsider, filters)
    admin_before = await answers(api, api.auth(Role.ADMIN), filters)

    report = await hidden_report(api, "PWALKHIDDEN", Visibility.PRIVATE)
    await counted(api, report)
    after = await answers(api, outsider, filters)
    named = [f"{key}: {mentions(text, report)}" for key, (_, text) in after.items() if mentions(text, report)]
    assert not named, "answers that name the hidden report:\n" + "\n".join(named)
    changed = [f"{key}: {before[key]} -> {after[key]}" for key in after if after[key] != before[key]]
    assert not changed, "answers that count the hidden report:\n" + "\n".join(changed)

    # The other methods (webhooks, tokens, templates …) answer without naming it either.
    for method, path in other_routes(api):
        if method != "GET":
            response = await api.http.request(headers=outsider, **build_request(api, method, path, {}))
            assert not mentions(response.text, report), f"{method} {path}: {response.text[:300]}"

    # The walk would see a leak: to an admin (who may see it) the same requests name and count it.
    admin_after = await answers(api, api.auth(Role.ADMIN), filters)
    differ = {key.split()[1] for key in admin_after if admin_after[key] != admin_before[key]}
    assert {"/api/postmortems", "/api/action-items", "/api/metrics"} <= differ, differ
    assert any(mentions(text, report) for _, text in admin_after.values())


@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.TEAM])
async def test_every_report_route_hides_a_report_from_who_may_not_see_it(api: Api, visibility: Visibility) -> None:
    report = await hidden_report(api, f"PHIDE{visibility.value.upper()}", visibility)
    outsider = await token(api, "outsider@example.com", Role.EDITOR, team="search")
    headers = {**outsider, "If-Match": f'"{report.version}"', "Idempotency-Key": "walk"}
    routes = report_routes(api)
    wrong: list[str] = []
    for method, path in routes:
        if is_page(api, method, path):
            response = await page_request(api, method, path, report.values, outsider)
            if not (response.status_code == 404 and hidden_page(response.text, report.id)):
                wrong.append(f"{method} {path} (page): {response.status_code} <{len(response.content)} bytes>")
            continue
        response = await api.http.request(headers=headers, **build_request(api, method, path, report.values))
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
            if method == "GET" and is_page(api, method, path):
                response = await page_request(api, method, path, report.values, teammate)
                assert not hidden_page(response.text, report.id), f"GET {path} hides the report from its own team"
            elif method == "GET":
                response = await api.http.request(headers=teammate, **build_request(api, method, path, report.values))
                hidden = response.status_code == 404 and response.json()["detail"] == f"no post-mortem {report.id!r}"
                assert not hidden, f"GET {path} hides the report from its own team"


async def sso_caller(api: Api, email: str, role: Role | None, team: str | None) -> dict[str, str]:
    """A person signed in through single sign-on (their groups gave `role` and `team`), as
    `page_request` takes a caller: the session cookie's value where a token would be."""
    secret = await link_secret(api.app.state.services)
    session = SsoSession(email=email, role=role, team=team, expires=int(datetime.now(UTC).timestamp()) + 3600)
    return {"Authorization": f"Bearer {seal_session(secret, session)}"}


@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.TEAM])
async def test_every_report_page_hides_a_report_from_a_single_sign_on_outsider(
    api: Api, visibility: Visibility
) -> None:
    """A single sign-on session is judged by the same rule as a token: an editor of another team
    (by their groups) gets the hidden report's pages as 404, its own team's member sees them."""
    report = await hidden_report(api, f"PSSO{visibility.value.upper()}", visibility)
    outsider = await sso_caller(api, "outsider@example.com", Role.EDITOR, "search")
    pages = [(method, path) for method, path in report_routes(api) if is_page(api, method, path)]
    assert len(pages) > 5, pages
    wrong = []
    for method, path in pages:
        response = await page_request(api, method, path, report.values, outsider)
        if not (response.status_code == 404 and hidden_page(response.text, report.id)):
            wrong.append(f"{method} {path}: {response.status_code}")
    assert not wrong, "report pages that answer a single sign-on outsider:\n" + "\n".join(wrong)
    listing = await api.http.get("/postmortems", headers={"Cookie": f"pm_session={outsider['Authorization'][7:]}"})
    assert listing.status_code == 200 and not mentions(listing.text, report)
    if visibility == Visibility.TEAM:
        teammate = await sso_caller(api, "mate@example.com", None, "payments")
        shown = await page_request(api, "GET", "/postmortems/{postmortem_id}", report.values, teammate)
        assert shown.status_code == 200 and SECRET_TITLE in shown.text


def is_page(api: Api, method: str, path: str) -> bool:
    """A page (postmortem.web): not in the OpenAPI, signed in by cookie, its forms urlencoded with a CSRF field."""
    return not _operation(api, method, path)[0]


async def page_request(api: Api, method: str, path: str, values: dict[str, str], caller: dict[str, str]) -> Any:
    """The page as a browser signed in with the caller's token asks for it (a form post with its CSRF token;
    also in the query, where the image upload's multipart form carries it)."""
    secret = caller["Authorization"].removeprefix("Bearer ")
    csrf = "walk-csrf-token-of-the-browser"
    url = PARAM.sub(lambda match: values.get(match.group(1), "1"), path)
    cookies = {"Cookie": f"pm_session={secret}; pm_csrf={csrf}"}
    data = {"csrf": csrf, "version": "1", "section": "summary", "body": "x", "title": "x"} if method == "POST" else None
    params = {"csrf": csrf} if method == "POST" else None
    return await api.http.request(method, url, headers=cookies, data=data, params=params)


def hidden_page(text: str, pm_id: str) -> bool:
    return str(escape(f"no post-mortem {pm_id!r}")) in text  # as Jinja escapes it


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
