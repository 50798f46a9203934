"""Benchmark: gather and distil 10,000 PagerDuty log entries from a loopback server.

    .venv/bin/python bench/gather.py [--entries 10000] [--database sqlite|postgresql]

Baseline, in the same run: fetching the same pages with a bare httpx loop (no normalising, no
store). Ours: the gather activity's own code path (PagerDutyClient → timeline entries → the store,
page by page), then reading everything back and distilling the Timeline section. Prints seconds,
the ratio to the baseline, and peak memory (Python allocations via tracemalloc in a second,
untimed pass, and the process's maximum resident set). Not a test: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback fake lives with the tests

from temporalio.testing import ActivityEnvironment  # noqa: E402

from postmortem.activities.gather import GatherActivities, GatherInput  # noqa: E402
from postmortem.config import HttpSettings, PagerDutySettings  # noqa: E402
from postmortem.evidence.distil import distil  # noqa: E402
from postmortem.evidence.models import EvidenceSource  # noqa: E402
from postmortem.store.store import Store  # noqa: E402
from tests.fakes.pagerduty import FakePagerDuty, pagerduty_app  # noqa: E402
from tests.fakes.serve import serve_app  # noqa: E402

INCIDENT = "PBENCH"


async def bare_fetch(base: str, token: str) -> tuple[float, int]:
    headers = {"Authorization": f"Token token={token}", "Accept": "application/vnd.pagerduty+json;version=2"}
    count, offset = 0, 0
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, trust_env=False) as http:
        while True:
            limit = min(100, 10_000 - offset)
            if limit <= 0:
                break
            body = (
                await http.get(f"/incidents/{INCIDENT}/log_entries", params={"limit": limit, "offset": offset})
            ).json()
            count += len(body["log_entries"])
            offset += len(body["log_entries"])
            if not body["more"]:
                break
    return time.perf_counter() - started, count


async def ours(
    base: str, token: str, url: str, schema: str | None, *, trace: bool
) -> tuple[float, float, int, int, int]:
    store = await Store.open(url, schema=schema)
    activities = GatherActivities(
        store.evidence,
        pagerduty=PagerDutySettings(api_url=base, api_token=token),
        http=HttpSettings(timeout_seconds=30),
    )
    pm_id = f"pagerduty-{INCIDENT}-{uuid.uuid4().hex[:8]}"
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    result = await ActivityEnvironment().run(
        activities.gather_pagerduty, GatherInput(postmortem_id=pm_id, incident_id=INCIDENT)
    )
    gathered = time.perf_counter() - started
    entries = await store.evidence.entries(pm_id, sources=[EvidenceSource.PAGERDUTY])
    key_events = distil(entries)
    total = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    await activities.aclose()
    await store.close()
    return gathered, total, result.entries, len(key_events), peak


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    fake = FakePagerDuty()
    fake.add_incident(INCIDENT, log_entries=args.entries, start=datetime(2024, 5, 1, 9, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as folder:
        if args.database == "sqlite":
            url, schema = f"sqlite+aiosqlite:///{folder}/bench.db", None
        else:
            url, schema = args.postgres_url, f"pm_bench_{uuid.uuid4().hex[:8]}"
        async with serve_app(pagerduty_app(fake)) as base:
            baseline, fetched = await bare_fetch(base, fake.token)
            gathered, total, stored, key_events, _ = await ours(base, fake.token, url, schema, trace=False)
            # A second pass measures memory: tracemalloc slows Python down too much to time with it on.
            _, _, _, _, peak = await ours(base, fake.token, url, schema, trace=True)
        if schema:
            import asyncpg

            connection = await asyncpg.connect(args.postgres_url.replace("postgresql+asyncpg", "postgresql"))
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await connection.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"gather {args.entries} PagerDuty log entries from a loopback server ({args.database} store)")
    print(f"{'path':<44} {'entries':>8} {'seconds':>8} {'per s':>9} {'vs baseline':>12}")
    print(
        f"{'bare httpx page loop (baseline)':<44} {fetched:>8} {baseline:>8.2f} {fetched / baseline:>9.0f} {'1.00x':>12}"
    )
    print(
        f"{'gather activity (fetch+normalise+store)':<44} {stored:>8} {gathered:>8.2f} {stored / gathered:>9.0f} "
        f"{baseline / gathered:>11.2f}x"
    )
    print(
        f"{'gather + read back + distil':<44} {stored:>8} {total:>8.2f} {stored / total:>9.0f} "
        f"{baseline / total:>11.2f}x"
    )
    print(f"key events in the Timeline section: {key_events}")
    print(f"peak Python allocations during gather+distil: {peak / 1024 / 1024:.1f} MiB; max RSS: {rss_mb:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
