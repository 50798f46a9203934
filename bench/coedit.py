"""Live co-editing under load (#14): N pycrdt editors on one report's WebSocket, typing for a while.

    python bench/coedit.py                    # 20 editors, 60 s, ~5 keystrokes/s each
    python bench/coedit.py --seconds 15       # a quick check

The real API runs as a subprocess (`postmortem api`, SQLite in a temporary folder; Temporal is not
needed for the document and is left unreachable). Each keystroke carries its sender and send time in
the text ("<editor>:<seq>;"); every other client notes when it first sees it. Printed: p50/p99/max of
keystroke → every other client, the server process's CPU (% of one core) and peak RSS, and whether
all clients (and the stored section) ended on the same text. Target: p99 < 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from postmortem.store.store import Store  # noqa: E402
from postmortem.store.tokens import Role  # noqa: E402
from tests.coedit_client import Editor, ws_url  # noqa: E402
from tests.factories import new_postmortem, pagerduty_event  # noqa: E402

NAME = "section:summary"
MARK = re.compile(r"(\d+):(\d+);")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_stats(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and RSS bytes of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


async def prepare(folder: Path) -> tuple[str, str]:
    store = await Store.open(f"sqlite+aiosqlite:///{folder / 'postmortem.db'}")
    try:
        pm, _ = await store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PBENCHCOEDIT").incident))
        _, secret = await store.tokens.create("bench", Role.EDITOR, datetime.now(UTC))
        return pm.id, secret
    finally:
        await store.close()


async def run(editors: int, seconds: float, rate: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-coedit-"))
    port = free_port()
    pm_id, secret = await prepare(folder)
    env = {
        **os.environ,
        "POSTMORTEM_DATA_DIR": str(folder),
        "POSTMORTEM_PORT": str(port),
        "POSTMORTEM_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nobody there: not needed here
        "POSTMORTEM_LOG_LEVEL": "WARNING",
    }
    postmortem = str(Path(sys.executable).with_name("postmortem"))
    log = (folder / "api.log").open("w")
    server = subprocess.Popen([postmortem, "api"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/healthz")).status_code < 500:
                        break
                if time.monotonic() > deadline or server.poll() is not None:
                    print((folder / "api.log").read_text(), file=sys.stderr)
                    raise SystemExit("the API did not start")
                await asyncio.sleep(0.2)
            await measure(url, http, pm_id, secret, server.pid, editors, seconds, rate)
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)
        if server.poll() is None:
            server.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


async def measure(
    url: str, http: httpx.AsyncClient, pm_id: str, secret: str, pid: int, editors: int, seconds: float, rate: float
) -> None:
    headers = {"Authorization": f"Bearer {secret}"}
    sent: dict[tuple[int, int], float] = {}
    latencies: list[float] = []
    clients = [Editor(ws_url(url, pm_id), headers) for _ in range(editors)]
    subscriptions = [watch(client, number, sent, latencies) for number, client in enumerate(clients)]
    assert len(subscriptions) == editors
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client)
        await asyncio.gather(*(asyncio.wait_for(client.synced.wait(), 30) for client in clients))
        cpu_before, _ = proc_stats(pid)
        peak = 0
        started = time.monotonic()

        async def typist(number: int, client: Editor) -> None:
            seq = 0
            await asyncio.sleep(random.random() / rate)
            while time.monotonic() - started < seconds:
                seq += 1
                sent[(number, seq)] = time.monotonic()
                await client.type(NAME, f"{number}:{seq};", random.randint(0, len(client.text(NAME))))
                await asyncio.sleep(random.expovariate(rate))

        async def sampler() -> None:
            nonlocal peak
            while time.monotonic() - started < seconds:
                peak = max(peak, proc_stats(pid)[1])
                await asyncio.sleep(0.5)

        await asyncio.gather(sampler(), *(typist(n, c) for n, c in enumerate(clients)))
        elapsed = time.monotonic() - started
        cpu_after, rss = proc_stats(pid)
        deadline = time.monotonic() + 10
        while len({client.text(NAME) for client in clients}) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        same = len({client.text(NAME) for client in clients}) == 1
        final = clients[0].text(NAME)
    stored = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = (await http.get(f"{url}/api/postmortems/{pm_id}", headers=headers)).json()
        stored = next(s["body"] for s in got["sections"] if s["key"] == "summary")
        if stored == final:
            break
        await asyncio.sleep(0.2)
    expected = len(sent) * (editors - 1)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    print(f"editors {editors}, {elapsed:.1f} s, keystrokes {len(sent)} ({len(sent) / elapsed:.0f}/s)")
    print(f"deliveries {len(latencies)} of {expected} (keystroke × every other client)")
    print(f"keystroke → other client: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms")
    print(
        f"server CPU {100 * (cpu_after - cpu_before) / elapsed:.0f}% of one core, RSS {max(peak, rss) / 2**20:.0f} MiB"
    )
    print(f"all clients converged: {same}; stored section equals the document: {stored == final}")
    print("PASS" if pct(0.99) < 150 and same and stored == final else "MISS", "(target p99 < 150 ms)")


def watch(client: Editor, number: int, sent: dict[tuple[int, int], float], latencies: list[float]) -> object:
    """Each keystroke mark of another client that arrives in this client's text, timed once."""
    seen: set[tuple[int, int]] = set()

    def on_change(event: Any) -> None:
        now = time.monotonic()
        for part in event.delta:
            for match in MARK.finditer(str(part.get("insert", ""))):
                key = (int(match.group(1)), int(match.group(2)))
                if key[0] != number and key not in seen and key in sent:
                    seen.add(key)
                    latencies.append(now - sent[key])

    return client.doc.get(NAME, type=Text).observe(on_change)  # kept: a dropped subscription stops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--editors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=5.0, help="keystrokes per second per editor")
    args = parser.parse_args()
    asyncio.run(run(args.editors, args.seconds, args.rate))


if __name__ == "__main__":
    main()
