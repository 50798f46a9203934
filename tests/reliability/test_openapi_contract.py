"""Schemathesis against our OpenAPI, on a served `postmortem dev`: no 5xx, nothing the document does not say.

The service runs as users run it (subprocess, real HTTP, every webhook configured); the run has the
admin token and real ids (one drafted report, its action item, comment and image), so the operations
reach their own logic instead of stopping at 401 or 404. Every operation is exercised by schemathesis'
phases (examples, coverage, fuzzing, stateful links), and a failure of any check fails the test, most
of all: a 5xx, a status code the operation does not document, a body (or content type) that does not
match the documented schema, a required header whose absence is accepted, a wrong answer to an
undeclared method.

One check is off: `positive_data_acceptance` ("schema-valid requests are accepted") cannot hold for
what the OpenAPI cannot say: a valid signature, a report's lifecycle state, a template that renders.
Those answers are documented 4xx, and the conformance checks judge them.

Bounded: a few examples per operation, about a minute on two cores. The seed is in the failure message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import schemathesis
from schemathesis import engine
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from tests.image_samples import png
from tests.reliability.service import ADMIN, DevService, resolve_body, signed

pytestmark = [pytest.mark.reliability, pytest.mark.slow]  # the slower tier: `scripts/test.sh -m slow`

T = TypeVar("T")
EXAMPLES = 25
TOKENS = {
    "POSTMORTEM_OPSGENIE_WEBHOOK_TOKEN": "contract-opsgenie-token",
    "POSTMORTEM_JSM_WEBHOOK_TOKEN": "contract-jsm-token",
    "POSTMORTEM_ALERTMANAGER_WEBHOOK_TOKEN": "contract-alertmanager-token",
    "POSTMORTEM_GITHUB_WEBHOOK_SECRET": "contract-github-secret",
    "POSTMORTEM_LINEAR_WEBHOOK_SECRET": "contract-linear-secret",
    "POSTMORTEM_JIRA_WEBHOOK_TOKEN": "contract-jira-token",
}
REPORT_DELETE = ("DELETE", "/api/postmortems/{postmortem_id}")


def poll(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """`check()` until it answers, before the deadline (the sync twin of tests.support.eventually)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (result := check()) is not None:
                return result
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


@dataclass
class Served:
    base: str
    ids: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    service = DevService(Path(tmp_path_factory.mktemp("contract")))
    service.env.update(TOKENS)
    service.start()
    try:
        with httpx.Client(base_url=service.base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as http:

            def ready() -> bool | None:
                assert service.process is not None and service.process.poll() is None, service.output()[-3000:]
                return True if http.get("/readyz").status_code == 200 else None

            poll(ready, 90, "the service is ready")
            yield Served(base=service.base, ids=real_ids(http))
    finally:
        service.kill_group()


def real_ids(http: httpx.Client) -> dict[str, str]:
    """One drafted report (from a signed resolve), with an action item, a comment and an image in it.

    Only the report's id is pinned: the stateful phase follows the links from what it creates (an
    action item, a comment) to the routes that read, change and delete it, with the created ids."""
    body = resolve_body("PCONTRACT")
    assert http.post("/webhooks/pagerduty", content=body, headers=signed(body)).status_code == 202
    pm_id = "pagerduty-PCONTRACT"

    def drafted() -> dict[str, Any] | None:
        response = http.get(f"/api/postmortems/{pm_id}")
        return response.json() if response.status_code == 200 else None

    report = poll(drafted, 60, "the report is drafted")
    item = http.post(f"/api/postmortems/{pm_id}/action-items", json={"description": "Alert on queue depth"})
    comment = http.post(
        f"/api/postmortems/{pm_id}/comments", json={"section": report["sections"][0]["key"], "body": "Right?"}
    )
    image = http.post(f"/api/postmortems/{pm_id}/images", files={"file": ("graph.png", png(width=2), "image/png")})
    for response in (item, comment, image):
        assert response.status_code == 201, response.text
    return {"postmortem_id": pm_id}


def config(served: Served, seed: int, *, stateful: bool = True) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "phases": {"stateful": {"enabled": stateful}},
            "base-url": served.base,
            "headers": {"Authorization": f"Bearer {ADMIN}"},
            "parameters": served.ids,
            "seed": seed,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                # 428 Precondition Required (RFC 6585) is the answer to a missing If-Match.
                "missing_required_header": {"expected-statuses": [400, 401, 403, 406, 415, 422, 428]},
                # An oversized body (413) is refused too.
                "negative_data_rejection": {
                    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
                },
            },
        }
    )


def run(schema: Any) -> tuple[list[str], set[str]]:
    """Every failed check (operation, check, what, the request as curl, the answer), and the operations run."""
    failures: list[str] = []
    exercised: set[str] = set()
    for event in engine.from_schema(schema).execute():
        if isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"schemathesis error: {event}")
        if not isinstance(event, events.ScenarioFinished):
            continue
        if event.status != Status.SKIP and event.recorder.interactions:
            exercised.add(event.recorder.label)
        for case_id, nodes in event.recorder.checks.items():
            for node in nodes:
                if node.failure_info is None:
                    continue
                interaction = event.recorder.interactions.get(case_id)
                answer = (
                    f"{interaction.response.status_code} {interaction.response.content[:300]!r}"
                    if interaction is not None and interaction.response is not None
                    else "no answer"
                )
                failure = node.failure_info.failure
                failures.append(
                    f"{event.recorder.label}: {node.name}: {failure.title}\n  {failure.message[:500]}\n"
                    f"  {node.failure_info.code_sample[:800]}\n  answered {answer}"
                )
    return failures, exercised


def test_the_api_keeps_the_promises_of_its_openapi(served: Served) -> None:
    seed = random.randrange(2**32)
    url = f"{served.base}/openapi.json"
    schema = schemathesis.openapi.from_url(url, config=config(served, seed))
    method, path = REPORT_DELETE
    # Everything but deleting the one real report, then that: deleting it first would leave 404s to test.
    failures, exercised = run(schema.exclude(method=method, path=path))
    last = schemathesis.openapi.from_url(url, config=config(served, seed, stateful=False))
    more_failures, more_exercised = run(last.include(method=method, path=path))
    failures, exercised = failures + more_failures, exercised | more_exercised
    operations = {
        f"{verb.upper()} {route}"
        for route, item in schema.raw_schema["paths"].items()
        for verb in item
        if verb in ("get", "put", "post", "patch", "delete")
    }
    assert not failures, f"{len(failures)} failed checks (seed {seed}):\n\n" + "\n\n".join(failures[:25])
    assert operations <= exercised, f"operations schemathesis did not exercise: {sorted(operations - exercised)}"


def test_the_openapi_documents_the_error_bodies_and_the_if_match_header(served: Served) -> None:
    """What schemathesis relies on, said plainly: every error answer has a schema; If-Match is required."""
    spec = httpx.get(f"{served.base}/openapi.json").json()
    undocumented = []
    for route, item in spec["paths"].items():
        for verb, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and "schema" not in response.get("content", {}).get("application/json", {}):
                    undocumented.append(f"{verb.upper()} {route} {status}")
            for parameter in operation.get("parameters", []):
                if parameter["name"].lower() == "if-match":
                    assert parameter["required"] is True, (route, verb)
    assert not undocumented, f"error answers without a schema: {undocumented}"
    assert {"ErrorBody", "ValidationErrorBody", "StaleVersionBody"} <= set(spec["components"]["schemas"])
    patch = spec["paths"]["/api/postmortems/{postmortem_id}"]["patch"]
    assert {"400", "401", "404", "412", "413", "415", "422", "428"} <= set(patch["responses"])
    created_to = next(p for p in spec["paths"]["/api/postmortems"]["get"]["parameters"] if p["name"] == "created_to")
    assert any(option.get("format") == "date-time" for option in created_to["schema"]["anyOf"]), created_to
    refused = httpx.get(
        f"{served.base}/api/postmortems", params={"created_to": "0.5"}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert refused.status_code == 422, refused.text
