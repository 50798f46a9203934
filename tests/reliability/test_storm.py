"""A storm: 1,000 PagerDuty deliveries at 20 concurrent senders, and exactly one report per incident.

600 distinct incidents, each resolved once; 300 duplicates on top (150 retries of a delivery with
the same `X-Webhook-Id` and body, 150 second `incident.resolved` events for an incident already
sent); 50 deliveries with a bad signature and 50 validly signed but malformed ones, each for an
incident of its own, so one wrongly accepted would show up as a report too. Every answer is 202 or
a 4xx with a reason; never a 5xx, never a 503 telling PagerDuty to come back.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest

from tests.dev_service import wait_ready
from tests.fixtures import fixture_json
from tests.reliability.service import (
    PAGERDUTY,
    RESOLVED,
    DevService,
    report_id,
    report_ids,
    resolve_body,
    signed,
    wait_for_reports,
)
from tests.support import eventually

pytestmark = [pytest.mark.reliability, pytest.mark.e2e, pytest.mark.slow]  # the slower tier: `scripts/test.sh -m slow`

INCIDENTS = 600
RETRIES = 150  # same X-Webhook-Id, same body
SECOND_EVENTS = 150  # another incident.resolved event for the same incident
BAD_SIGNATURES = 50
MALFORMED = 50
SENDERS = 20


@dataclass(frozen=True)
class Delivery:
    kind: str  # "first", "retry", "second", "bad-signature", "malformed"
    incident_id: str
    body: bytes
    headers: dict[str, str]


def _malformed(n: int) -> bytes:
    """Validly signed, but not something that can become a report: each kind of broken in turn."""
    incident_id = f"PMAL{n:03d}"
    kind = n % 6
    if kind == 0:
        return resolve_body(incident_id)[:-40]  # cut off mid-document
    if kind == 1:
        return b"[" + resolve_body(incident_id) + b"]"  # JSON, but not an object
    if kind == 2:
        return b"\xff\xfe" + resolve_body(incident_id)  # not UTF-8
    if kind == 3:
        return json.dumps({"event": f"resolved {incident_id}"}).encode()  # event is not an object
    if kind == 4:
        return json.dumps({"incident": {"id": incident_id}}).encode()  # neither V3 nor V2
    payload = fixture_json(RESOLVED)
    payload["event"]["data"]["id"] = incident_id
    payload["event"]["data"]["type"] = "service"  # a resolved event about something that is not an incident
    return json.dumps(payload).encode()


def storm() -> list[Delivery]:
    rng = random.Random(11)
    incidents = [f"PSTORM{n:04d}" for n in range(INCIDENTS)]
    firsts = [Delivery("first", i, body := resolve_body(i), signed(body, f"W-{i}")) for i in incidents]
    retries = [Delivery("retry", d.incident_id, d.body, d.headers) for d in rng.sample(firsts, RETRIES)]
    seconds = [
        Delivery("second", i, body := resolve_body(i, f"EV2-{i}"), signed(body, f"W2-{i}"))
        for i in rng.sample(incidents, SECOND_EVENTS)
    ]
    bad = [
        Delivery("bad-signature", f"PBAD{n:03d}", body := resolve_body(f"PBAD{n:03d}"), signed(body, secret="wrong"))
        for n in range(BAD_SIGNATURES)
    ]
    malformed = [
        Delivery("malformed", f"PMAL{n:03d}", body := _malformed(n), signed(body, f"WM-{n}")) for n in range(MALFORMED)
    ]
    deliveries = [*firsts, *retries, *seconds, *bad, *malformed]
    rng.shuffle(deliveries)
    return deliveries


async def test_a_storm_of_deliveries_makes_exactly_one_report_per_incident(service: DevService) -> None:
    deliveries = storm()
    assert len(deliveries) == 1000
    queue: asyncio.Queue[Delivery] = asyncio.Queue()
    for delivery in deliveries:
        queue.put_nowait(delivery)
    answers: list[tuple[Delivery, int, str]] = []

    async with service.client() as http:
        await wait_ready(http, service)

        async def sender() -> None:
            while not queue.empty():
                delivery = queue.get_nowait()
                answer = await http.post(PAGERDUTY, content=delivery.body, headers=delivery.headers)
                answers.append((delivery, answer.status_code, answer.text))

        await asyncio.gather(*(sender() for _ in range(SENDERS)))

        by_kind: Counter[tuple[str, int]] = Counter((d.kind, code) for d, code, _ in answers)
        server_errors = [(d.kind, d.incident_id, code, text[:200]) for d, code, text in answers if code >= 500]
        assert not server_errors, f"{len(server_errors)} answers were 5xx: {server_errors[:5]}"
        for kind in ("first", "retry", "second"):
            wrong = [(d.incident_id, code, text[:200]) for d, code, text in answers if d.kind == kind and code != 202]
            assert not wrong, f"{kind}: {wrong[:5]}"
        assert by_kind[("bad-signature", 401)] == BAD_SIGNATURES, by_kind
        malformed = Counter(code for d, code, _ in answers if d.kind == "malformed")
        assert set(malformed) <= {400, 422} and sum(malformed.values()) == MALFORMED, malformed
        for delivery, code, text in answers:
            if code >= 400:
                detail = json.loads(text).get("detail")
                assert detail and isinstance(detail, str), f"{delivery.kind} {code} without a reason: {text[:200]}"

        expected = {report_id(f"PSTORM{n:04d}") for n in range(INCIDENTS)}
        await wait_for_reports(http, service, expected, timeout=480)
        await _until_the_inbox_is_settled(http)
        found = await report_ids(http)
        assert found == dict.fromkeys(expected, 1), (
            f"{len(found)} reports for {INCIDENTS} incidents; extra: {sorted(set(found) - expected)[:5]}, "
            f"twice: {[k for k, v in found.items() if v > 1][:5]}"
        )
    assert service.stop() == 0


async def _until_the_inbox_is_settled(http: httpx.AsyncClient) -> None:
    """Nothing pending any more, so no late duplicate can still turn up after the count; nothing failed."""

    async def settled() -> dict[str, int] | None:
        answer = await http.get("/api/inbox", params={"limit": 1})
        assert answer.status_code == 200, answer.text
        counts: dict[str, int] = answer.json()["counts"]
        return counts if counts.get("pending", 0) == 0 else None

    counts = await eventually(settled, timeout=60, interval=0.5)
    assert counts.get("failed", 0) == 0, counts
