"""Live co-editing under load (#14): N pycrdt editors on one report's WebSocket, typing for a while.

    python bench/coedit.py                    # 20 editors, 60 s, ~5 keystrokes/s each; then the bare relay
    python bench/coedit.py --seconds 15       # a quick check
    python bench/coedit.py --no-baseline      # ours only

The real API runs as a subprocess (`postmortem api`, SQLite in a temporary folder; Temporal is not
needed for the document and is left unreachable). Each keystroke carries its sender and send time in
the text ("<editor>:<seq>;"); every other client notes when it first sees it. Printed: p50/p99/max of
keystroke → every other client, the server process's CPU (% of one core) and peak RSS, and whether
all clients (and the stored section) ended on the same text. Target: p99 < 150 ms.

Then the baseline, the floor for this work, measured the same way: the same editors, typing schedule
(each editor's gaps and places from the same seed) and duration against a bare relay in its own process
(`bench/coedit.py --relay PORT SEED`, started by the benchmark: a `websockets` server holding one
pycrdt document seeded as ours is, answering sync step 1 and forwarding every update to every other
socket; no auth, store or persistence). Printed: its p50/p99/max, CPU and RSS, and ours / baseline for
p50, p99 and CPU. PASS/MISS is ours against the target. `--no-baseline` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pycrdt import (
    Doc,
    Text,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    read_message,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.coedit_client import Editor, ws_url  # noqa: E402

# The API's modules (the store, the factories) and httpx are imported where they are used: the relay's
# process runs this file too, and holds only websockets and pycrdt, so that its RSS is the floor's.

NAME = "section:summary"
MARK = re.compile(r"(\d+):(\d+);")
SCHEDULE = 14  # the typing schedule: each editor's gaps and places, the same against ours and the relay


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


@dataclass
class Figures:
    """One server's run: keystrokes sent, deliveries timed, the server's CPU and RSS, the end state."""

    elapsed: float
    keystrokes: int
    expected: int  # keystrokes × every other client
    latencies: list[float]  # seconds, sorted
    cpu: float  # % of one core while typing
    rss: int  # bytes, the peak sampled
    converged: bool
    final: str

    def pct(self, p: float) -> float:
        """The p-th latency in ms (p = 1: the max)."""
        lat = self.latencies
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    def latency_line(self) -> str:
        return f"p50 {self.pct(0.5):.1f} ms, p99 {self.pct(0.99):.1f} ms, max {self.pct(1.0):.1f} ms"


def ratio(ours: float, floor: float) -> str:
    return f"{ours / floor:.1f}×" if floor > 0 and not math.isnan(ours) else "n/a"


async def prepare(folder: Path) -> tuple[str, str, bytes]:
    """A report and an editor's token in a new store, and the document our API seeds for the report."""
    from postmortem.report import live_document
    from postmortem.store.store import Store
    from postmortem.store.tokens import Role
    from tests.factories import new_postmortem, pagerduty_event

    store = await Store.open(f"sqlite+aiosqlite:///{folder / 'postmortem.db'}")
    try:
        pm, _ = await store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PBENCHCOEDIT").incident))
        _, secret = await store.tokens.create("bench", Role.EDITOR, datetime.now(UTC))
        return pm.id, secret, live_document.seed(pm.title, {section.key: section.body for section in pm.sections})
    finally:
        await store.close()


async def run(editors: int, seconds: float, rate: float, baseline: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-coedit-"))
    try:
        pm_id, secret, seed = await prepare(folder)
        ours, stored = await run_ours(folder, pm_id, secret, editors, seconds, rate)
        print(
            f"editors {editors}, {ours.elapsed:.1f} s, keystrokes {ours.keystrokes} ({ours.keystrokes / ours.elapsed:.0f}/s)"
        )
        print(f"deliveries {len(ours.latencies)} of {ours.expected} (keystroke × every other client)")
        print(f"keystroke → other client: {ours.latency_line()}")
        print(f"server CPU {ours.cpu:.0f}% of one core, RSS {ours.rss / 2**20:.0f} MiB")
        print(f"all clients converged: {ours.converged}; stored section equals the document: {stored}", flush=True)
        if baseline:
            (folder / "seed.bin").write_bytes(seed)
            floor = await run_relay(folder, folder / "seed.bin", pm_id, editors, seconds, rate)
            print("baseline, a bare relay (websockets, one pycrdt document, each update to every other socket):")
            print(
                f"  keystrokes {floor.keystrokes} ({floor.keystrokes / floor.elapsed:.0f}/s),"
                f" deliveries {len(floor.latencies)} of {floor.expected}, all clients converged: {floor.converged}"
            )
            print(f"  keystroke → other client: {floor.latency_line()}")
            print(f"  relay CPU {floor.cpu:.1f}% of one core, RSS {floor.rss / 2**20:.0f} MiB")
            print(
                f"ours / baseline: p50 {ratio(ours.pct(0.5), floor.pct(0.5))},"
                f" p99 {ratio(ours.pct(0.99), floor.pct(0.99))}, CPU {ratio(ours.cpu, floor.cpu)}"
            )
        print("PASS" if ours.pct(0.99) < 150 and ours.converged and stored else "MISS", "(target p99 < 150 ms)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def start(command: list[str], folder: Path, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with (folder / f"{name}.log").open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(10)
    if server.poll() is None:
        server.kill()
        server.wait()


async def wait_ready(
    ready: Callable[[], Awaitable[bool]], server: subprocess.Popen[bytes], folder: Path, name: str
) -> None:
    deadline = time.monotonic() + 60
    while not await ready():
        if time.monotonic() > deadline or server.poll() is not None:
            print((folder / f"{name}.log").read_text(), file=sys.stderr)
            raise SystemExit(f"the {name} did not start")
        await asyncio.sleep(0.2)


async def run_ours(
    folder: Path, pm_id: str, secret: str, editors: int, seconds: float, rate: float
) -> tuple[Figures, bool]:
    """The real API: the figures, and whether the stored section ended equal to the document."""
    import httpx

    port = free_port()
    env = {
        **os.environ,
        "POSTMORTEM_DATA_DIR": str(folder),
        "POSTMORTEM_PORT": str(port),
        "POSTMORTEM_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nobody there: not needed here
        "POSTMORTEM_LOG_LEVEL": "WARNING",
    }
    postmortem = str(Path(sys.executable).with_name("postmortem"))
    server = start([postmortem, "api"], folder, "api", env)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        async with httpx.AsyncClient() as http:

            async def healthy() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return (await http.get(f"{url}/healthz")).status_code < 500
                return False

            await wait_ready(healthy, server, folder, "api")
            figures = await measure(ws_url(url, pm_id), headers, server.pid, editors, seconds, rate)
            stored = ""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                got = (await http.get(f"{url}/api/postmortems/{pm_id}", headers=headers)).json()
                stored = next(s["body"] for s in got["sections"] if s["key"] == "summary")
                if stored == figures.final:
                    break
                await asyncio.sleep(0.2)
            return figures, stored == figures.final
    finally:
        stop(server)


async def run_relay(folder: Path, seed: Path, pm_id: str, editors: int, seconds: float, rate: float) -> Figures:
    """The floor: the same clients and schedule against `relay` in its own process."""
    from websockets.asyncio.client import connect

    port = free_port()
    server = start([sys.executable, str(Path(__file__).resolve()), "--relay", str(port), str(seed)], folder, "relay")
    url = ws_url(f"http://127.0.0.1:{port}", pm_id)  # the path is ignored: one document

    async def listening() -> bool:
        with contextlib.suppress(OSError):
            async with connect(url):
                return True
        return False

    try:
        await wait_ready(listening, server, folder, "relay")
        return await measure(url, {}, server.pid, editors, seconds, rate)
    finally:
        stop(server)


async def relay(port: int, seed: Path) -> None:
    """A bare y-websocket relay: one pycrdt document (seeded), sync step 1 answered with step 2 and ours
    sent on joining, every update applied and forwarded to every other socket. Nothing else."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    doc: Doc = Doc()
    doc.apply_update(seed.read_bytes())
    sockets: set[ServerConnection] = set()

    async def handler(socket: ServerConnection) -> None:
        sockets.add(socket)
        try:
            await socket.send(create_sync_message(doc))
            async for message in socket:
                if not isinstance(message, bytes) or len(message) < 2 or message[0] != YMessageType.SYNC:
                    continue
                if message[1] == YSyncMessageType.SYNC_STEP1:
                    reply = handle_sync_message(message[1:], doc)
                    if reply is not None:
                        await socket.send(reply)
                elif message[1] in (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
                    update = read_message(message[2:])
                    if update == b"\x00\x00":
                        continue  # an empty step 2
                    doc.apply_update(update)
                    forward = message if message[1] == YSyncMessageType.SYNC_UPDATE else create_update_message(update)
                    broadcast([other for other in sockets if other is not socket], forward)
        except ConnectionClosed:
            pass  # a client gone (the start-up probe, the end of a run): nothing to tell
        finally:
            sockets.discard(socket)

    async with serve(handler, "127.0.0.1", port, max_size=None) as server:
        await server.serve_forever()


async def measure(url: str, headers: dict[str, str], pid: int, editors: int, seconds: float, rate: float) -> Figures:
    sent: dict[tuple[int, int], float] = {}
    latencies: list[float] = []
    clients = [Editor(url, headers) for _ in range(editors)]
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
            gaps, places = random.Random(f"{SCHEDULE}-gaps-{number}"), random.Random(f"{SCHEDULE}-places-{number}")
            seq = 0
            await asyncio.sleep(gaps.random() / rate)
            while time.monotonic() - started < seconds:
                seq += 1
                sent[(number, seq)] = time.monotonic()
                await client.type(NAME, f"{number}:{seq};", places.randint(0, len(client.text(NAME))))
                await asyncio.sleep(gaps.expovariate(rate))

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
    return Figures(
        elapsed=elapsed,
        keystrokes=len(sent),
        expected=len(sent) * (editors - 1),
        latencies=sorted(latencies),
        cpu=100 * (cpu_after - cpu_before) / elapsed,
        rss=max(peak, rss),
        converged=same,
        final=final,
    )


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
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare relay (ours only, no ratios)")
    parser.add_argument("--relay", nargs=2, metavar=("PORT", "SEED"), help=argparse.SUPPRESS)  # the baseline's process
    args = parser.parse_args()
    if args.relay:
        asyncio.run(relay(int(args.relay[0]), Path(args.relay[1])))
    else:
        asyncio.run(run(args.editors, args.seconds, args.rate, not args.no_baseline))


if __name__ == "__main__":
    main()
