"""A crash of everything: what `postmortem dev` acknowledged before it died is a report after a restart.

Deliveries stream in from 30 concurrent senders; once 30 of them are acknowledged, the whole
process group (Temporal dev server, worker, API) is SIGKILLed while the rest are still being
answered. A 202 is a promise: after a restart on the same data folder each acknowledged delivery
must become a report, exactly once. Those cut off mid-answer may or may not be there (the sender
retries them); none may be there twice.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.dev_service import wait_ready
from tests.reliability.service import (
    PAGERDUTY,
    DevService,
    report_id,
    report_ids,
    resolve_body,
    signed,
    wait_for_reports,
)

pytestmark = [pytest.mark.reliability, pytest.mark.e2e, pytest.mark.slow]  # the slower tier: `scripts/test.sh -m slow`

SENDERS = 30
KILL_AFTER = 30  # acknowledgements
POOL = 400  # more incidents than can be answered before the kill lands


async def test_every_acknowledged_delivery_survives_a_kill_of_the_whole_process_group(service: DevService) -> None:
    incidents = [f"PCRASH{n:04d}" for n in range(POOL)]
    acknowledged: list[str] = []
    cut_off: list[str] = []
    enough = asyncio.Event()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for incident_id in incidents:
        queue.put_nowait(incident_id)

    async with service.client() as http:
        await wait_ready(http, service)

        async def sender() -> None:
            while not enough.is_set() and not queue.empty():
                incident_id = queue.get_nowait()
                body = resolve_body(incident_id)
                try:
                    answer = await http.post(PAGERDUTY, content=body, headers=signed(body, f"W-{incident_id}"))
                except httpx.TransportError:
                    cut_off.append(incident_id)
                    return
                assert answer.status_code == 202, answer.text
                acknowledged.append(incident_id)
                if len(acknowledged) >= KILL_AFTER:
                    enough.set()

        senders = [asyncio.create_task(sender()) for _ in range(SENDERS)]
        await enough.wait()
        service.kill_group()  # while the other senders' deliveries are being answered
        await asyncio.gather(*senders)

    assert cut_off, "the kill landed after every delivery was answered: nothing was in flight"
    promised = {report_id(i) for i in acknowledged}

    service.start()
    async with service.client() as http:
        await wait_ready(http, service)
        await wait_for_reports(http, service, promised, timeout=150)
        found = await report_ids(http)
    sent = {report_id(i) for i in [*acknowledged, *cut_off]}
    assert set(found) <= sent, f"reports nobody sent: {sorted(set(found) - sent)[:5]}"
    assert all(count == 1 for count in found.values()), "a report listed twice"
    assert service.stop() == 0
