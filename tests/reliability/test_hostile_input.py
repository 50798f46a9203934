"""Hostile input at every endpoint that takes a body: oversized, deep, invalid UTF-8, lone surrogates, NUL.

The endpoints come from the routing table (as tests/api/test_report_routes.py finds them), so one added
later is covered without editing this file: every route whose OpenAPI has a request body, and every
webhook (they read their raw body themselves). Each request is authenticated (a webhook's signature is
over the very bytes sent), so a refusal comes from the limits, not from a missing signature; each
answer is JSON `{"detail": "…"}` with the status the issue names and a message naming the limit or
the field. Before these limits, a 10 MB body was read whole, 100,000 levels of nesting were a 500, a
lone surrogate in a title was a 500 and a NUL was stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.routing import APIRoute, iter_route_contexts

from postmortem.config import LimitsSettings
from postmortem.models import ActionItemStatus, Priority
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event
from tests.fixtures import fixture_json
from tests.reliability.inprocess import Target, in_process, webhook_auth

pytestmark = pytest.mark.reliability

PARAM = re.compile(r"{(\w+)(?::\w+)?}")
WEBHOOK_CAP = LimitsSettings().webhook_max_bytes
ALERTMANAGER_CAP = LimitsSettings().alertmanager_max_bytes
API_CAP = LimitsSettings().api_max_bytes
DEPTH = LimitsSettings().json_max_depth
CHUNK = 64 * 1024


@pytest_asyncio.fixture
async def target(sqlite_store: Store, tmp_path: Path) -> AsyncIterator[Target]:
    async with in_process(sqlite_store, tmp_path) as running:
        yield running


async def path_values(target: Target) -> dict[str, str]:
    """Real ids for the path parameters: one report with an action item and a comment."""
    now = datetime.now(UTC)
    pm, _ = await target.store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PHOSTILE").incident))
    item = await target.store.postmortems.add_action_item(
        pm.id,
        description="Alert on queue depth",
        owner=None,
        due_date=None,
        priority=Priority.MEDIUM,
        status=ActionItemStatus.OPEN,
        now=now,
    )
    comment = await target.store.review.add_comment(
        pm.id, section=pm.sections[0].key, author="admin@example.com", body="Right?", parent_id=None, now=now
    )
    return {"postmortem_id": pm.id, "item_id": item.id, "comment_id": comment.id, "name": "team-review"}


def body_endpoints(target: Target) -> list[tuple[str, str]]:
    """(method, path) of every endpoint that takes a body, from the routing table and the OpenAPI."""
    spec = target.app.openapi()
    found = []
    for route in iter_route_contexts(target.app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        path = route.path_format
        assert path is not None
        if not route.original_route.include_in_schema:
            continue  # a page's form (postmortem/web): HTML answers, tested in tests/web
        for method in sorted(route.methods or ()):
            operation = spec["paths"][path][method.lower()]
            if "requestBody" in operation or path.startswith("/webhooks/"):
                found.append((method, path))
    assert len(found) >= 19, f"fewer endpoints with a body than expected: {found}"
    return found


def cap_of(path: str) -> tuple[int, str]:
    if path == "/webhooks/alertmanager":
        return ALERTMANAGER_CAP, "POSTMORTEM_ALERTMANAGER_MAX_BYTES"
    if path.startswith("/webhooks/"):
        return WEBHOOK_CAP, "POSTMORTEM_WEBHOOK_MAX_BYTES"
    return API_CAP, "POSTMORTEM_API_MAX_BYTES"


def detail_of(response: httpx.Response) -> str:
    """The answer must be JSON `{"detail": "<sentence>"}`, whatever refused the request."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    payload = response.json()
    assert set(payload) == {"detail"} and isinstance(payload["detail"], str), payload
    return payload["detail"]


async def send(target: Target, method: str, path: str, values: dict[str, str], body: bytes) -> httpx.Response:
    url = PARAM.sub(lambda match: values.get(match.group(1), "1"), path)
    return await target.http.request(method, url, content=body, headers=target.auth(path, body))


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head, tail = b'{"title": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("deep", b"[" * 100_000 + b"]" * 100_000, 400, f"the limit is {DEPTH} (POSTMORTEM_JSON_MAX_DEPTH)"),
    ("deep object", b'{"a":' * (DEPTH + 1) + b"1" + b"}" * (DEPTH + 1), 400, f"nested {DEPTH + 1} levels deep"),
    ("invalid UTF-8", b'{"title": "caf\xc3\x28"}', 400, "not valid UTF-8"),
    ("overlong UTF-8", b'{"title": "\xc0\xaf"}', 400, "not valid UTF-8"),
    ("encoded surrogate", b'{"title": "\xed\xa0\x80"}', 400, "not valid UTF-8"),
    ("UTF-16", '{"title": "x"}'.encode("utf-16"), 400, "not valid UTF-8"),
    ("lone surrogate", b'{"title": "\\ud800"}', 422, "$.title contains a lone surrogate (U+D800)"),
    ("low surrogate", b'{"a": [{"b": "x\\udfff"}]}', 422, "$.a[0].b contains a lone surrogate (U+DFFF)"),
    ("NUL", b'{"title": "a\\u0000b"}', 422, "$.title contains a NUL character"),
    ("NUL in a key", b'{"sections": {"a\\u0000": 1}}', 422, 'the key $.sections["a\\u0000"] contains a NUL'),
    ("huge integer", b'{"title": ' + b"9" * 5000 + b"}", 400, "not valid JSON"),
    ("NaN", b'{"title": NaN}', 400, "not valid JSON"),
]


@pytest.mark.parametrize(("case", "body", "status", "says"), HOSTILE, ids=[case[0] for case in HOSTILE])
async def test_every_endpoint_with_a_body_refuses_hostile_json(
    target: Target, case: str, body: bytes, status: int, says: str
) -> None:
    values = await path_values(target)
    wrong = []
    for method, path in body_endpoints(target):
        response = await send(target, method, path, values, body)
        detail = detail_of(response)
        if response.status_code != status or says not in detail:
            wrong.append(f"{method} {path}: {response.status_code} {detail[:200]}")
    assert not wrong, f"{case}:\n" + "\n".join(wrong)


async def test_every_endpoint_with_a_body_refuses_an_oversized_one_by_its_content_length(target: Target) -> None:
    values = await path_values(target)
    for method, path in body_endpoints(target):
        cap, setting = cap_of(path)
        response = await send(target, method, path, values, padded(cap + 1))
        detail = detail_of(response)
        assert response.status_code == 413, f"{method} {path}: {response.status_code} {detail}"
        assert f"{cap + 1} bytes" in detail and f"the limit here is {cap} bytes ({setting})" in detail, detail


async def test_an_oversized_stream_is_dropped_as_soon_as_it_passes_the_cap(target: Target) -> None:
    """No Content-Length (chunked): the reader stops at the cap, so the body is never held whole."""
    values = await path_values(target)
    for method, path in body_endpoints(target):
        cap, setting = cap_of(path)
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            yield b'{"title": "'
            for _ in range(16 * 1024 * 1024 // CHUNK):  # 16 MiB offered
                sent += 1
                yield b"x" * CHUNK

        url = PARAM.sub(lambda match: values.get(match.group(1), "1"), path)
        response = await target.http.request(method, url, content=body(), headers=target.auth(path, b""))
        detail = detail_of(response)
        assert response.status_code == 413, f"{method} {path}: {response.status_code} {detail}"
        assert f"is over {cap} bytes; the limit here is {cap} bytes ({setting})" in detail, detail
        assert sent <= cap // CHUNK + 2, f"{method} {path}: {sent} chunks of {CHUNK} read for a cap of {cap}"


async def test_the_depth_limit_is_inclusive_and_a_signed_deep_event_is_refused(target: Target) -> None:
    """64 levels pass the limit (and meet the model: 422 for the wrong type); 65 are 400. A real, signed
    PagerDuty resolve with a field nested past the limit is refused, not answered 202 to fail later."""
    at_limit = json.dumps({"name": _nested(DEPTH - 1)}).encode()
    response = await target.http.post("/api/tokens", content=at_limit, headers=target.auth("/api/tokens", at_limit))
    assert response.status_code == 422 and isinstance(response.json()["detail"], list), response.text
    over = json.dumps({"name": _nested(DEPTH)}).encode()
    response = await target.http.post("/api/tokens", content=over, headers=target.auth("/api/tokens", over))
    assert response.status_code == 400 and f"nested {DEPTH + 1} levels" in detail_of(response)

    event = fixture_json("pagerduty_v3_incident_resolved.json")
    event["event"]["data"]["custom"] = _nested(DEPTH)
    body = json.dumps(event).encode()
    response = await target.http.post("/webhooks/pagerduty", content=body, headers=webhook_auth("pagerduty", body))
    assert response.status_code == 400 and "POSTMORTEM_JSON_MAX_DEPTH" in detail_of(response)
    assert sum((await target.store.inbox.counts()).values()) == 0  # nothing was committed


def _nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


async def test_text_in_a_report_edit_is_refused_naming_its_field_and_nothing_is_stored(target: Target) -> None:
    values = await path_values(target)
    url = f"/api/postmortems/{values['postmortem_id']}"
    before = await target.store.postmortems.get(values["postmortem_id"])
    headers = {**target.auth(url, b""), "If-Match": f'"{before.version}"'}
    for patch, where in [
        ({"title": "\ud800"}, "$.title contains a lone surrogate (U+D800)"),
        ({"title": "Disk\x00full"}, "$.title contains a NUL character"),
        ({"sections": {"summary": {"body": "ok\x00"}}}, "$.sections.summary.body contains a NUL character"),
    ]:
        response = await target.http.patch(url, content=json.dumps(patch).encode(), headers=headers)
        assert response.status_code == 422 and where in detail_of(response), response.text
    after = await target.store.postmortems.get(values["postmortem_id"])
    assert (after.version, after.title) == (before.version, before.title)
    fine = await target.http.patch(url, json={"title": "Disk full on db-1 \U0001f4be"}, headers=headers)
    assert fine.status_code == 200 and fine.json()["title"] == "Disk full on db-1 \U0001f4be"


async def test_routing_and_framework_errors_are_json_too(target: Target) -> None:
    unknown = await target.http.get("/nope")
    assert unknown.status_code == 404 and detail_of(unknown) == "Not Found"
    for method in ("OPTIONS", "TRACE", "PUT"):
        wrong = await target.http.request(method, "/api/templates", headers=target.admin)
        assert wrong.status_code == 405 and detail_of(wrong) == "Method Not Allowed"
        assert wrong.headers["allow"] == "GET, POST"  # every method of the resource, not one route's
    as_text = await target.http.post(
        "/api/tokens", content=b"name=x", headers={**target.admin, "Content-Type": "text/plain"}
    )
    assert as_text.status_code == 415 and "application/json" in detail_of(as_text)
    untyped = await target.http.post("/api/tokens", content=b'{"name": "x"}', headers=target.admin)
    assert untyped.status_code == 415 and "no Content-Type" in detail_of(untyped)
    nul_path = await target.http.get("/api/templates/a%00b", headers=target.admin)
    assert nul_path.status_code == 404 and "NUL" in detail_of(nul_path)
    nul_query = await target.http.get("/api/postmortems", params={"team": "a\x00"}, headers=target.admin)
    assert nul_query.status_code == 422 and 'query parameter "team" contains a NUL' in detail_of(nul_query)
    values = await path_values(target)
    odd_etag = await target.http.patch(
        f"/api/postmortems/{values['postmortem_id']}",
        json={"title": "x"},
        headers=[(b"authorization", target.admin["Authorization"].encode()), (b"if-match", "²".encode("latin-1"))],
    )
    assert odd_etag.status_code == 400 and "malformed If-Match" in detail_of(odd_etag)


@pytest.mark.parametrize(
    ("url", "value"),
    [
        ("/api/postmortems?created_to={}", "0.5"),
        ("/api/postmortems?created_from={}", "1700000000"),
        ("/api/postmortems?created_from={}", "2026-01-01T00:00:00"),  # no time zone
        ("/api/metrics?from={}", "0.5"),
        ("/api/metrics?to={}", "1e9"),
        ("/api/action-items?due_from={}", "0"),
        ("/api/action-items?due_to={}", "20260101"),
    ],
)
async def test_date_and_time_parameters_take_iso_8601_only(target: Target, url: str, value: str) -> None:
    refused = await target.http.get(url.format(value), headers=target.admin)
    assert refused.status_code == 422, refused.text
    iso = "2026-05-01" if "due_" in url else "2026-05-01T09:30:00Z"
    assert (await target.http.get(url.format(iso), headers=target.admin)).status_code == 200


async def test_the_limits_are_settings(sqlite_store: Store, tmp_path: Path) -> None:
    limits = LimitsSettings(webhook_max_bytes=4096, api_max_bytes=2048, json_max_depth=8)
    async with in_process(sqlite_store, tmp_path, limits=limits) as target:
        body = padded(4097)
        response = await target.http.post("/webhooks/jira", content=body, headers=webhook_auth("jira", body))
        assert response.status_code == 413 and "the limit here is 4096 bytes" in detail_of(response)
        body = padded(2049)
        response = await target.http.post("/api/tokens", content=body, headers=target.auth("/api/tokens", body))
        assert response.status_code == 413 and "the limit here is 2048 bytes" in detail_of(response)
        body = json.dumps({"name": _nested(8)}).encode()
        response = await target.http.post("/webhooks/jira", content=body, headers=webhook_auth("jira", body))
        assert response.status_code == 400 and "the limit is 8 (POSTMORTEM_JSON_MAX_DEPTH)" in detail_of(response)


async def test_numbers_in_query_parameters_are_bounded(target: Target) -> None:
    """An offset past the databases' 64-bit integers was a 500 (schemathesis found it): now 422."""
    values = await path_values(target)
    url = f"/api/postmortems/{values['postmortem_id']}/timeline"
    huge = await target.http.get(url, params={"offset": str(10**21)}, headers=target.admin)
    assert huge.status_code == 422, huge.text
    assert (await target.http.get(url, params={"offset": "1000000000"}, headers=target.admin)).status_code == 200
