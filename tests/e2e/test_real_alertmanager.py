"""End to end: a real Prometheus Alertmanager notifies our API, which stores the alert firing, then resolved.

Our API runs on a loopback port (uvicorn, in-process, over SQLite); Alertmanager is Debian's
`prometheus-alertmanager` binary started here as a subprocess (no systemd, no gossip), with a webhook
receiver pointed at us and a bearer token. Alerts go in through its API v2 as Prometheus would post them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.config import AlertmanagerSettings, StoreSettings
from postmortem.incident.teams import TeamsConfig
from postmortem.store.store import Store
from tests.fakes.serve import loopback_client, serve_app
from tests.support import eventually, free_port

pytestmark = pytest.mark.e2e

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
INSTALL = "apt-get update && apt-get install -y --no-install-recommends prometheus-alertmanager"
TOKEN = "e2e-alertmanager-token"
WEBHOOK_PATH = "/webhooks/alertmanager"
EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
DEADLINE = 30.0
ZERO_TIME = "0001-01-01T00:00:00Z"

# group_wait 0s and the smallest group_interval 0.25 accepts (it rejects 0: "group_interval cannot be
# zero"; 1ms is the smallest unit its durations take). Each flush still gets notify.MinTimeout (10 s)
# to deliver, so a tiny group_interval costs nothing but speeds up the resolved notification.
CONFIG = """\
route:
  receiver: postmortem
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1ms
  repeat_interval: 1h
receivers:
  - name: postmortem
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization:
            credentials: {token}
"""


def alertmanager_binary() -> str:
    found = ALERTMANAGER if Path(ALERTMANAGER).exists() else shutil.which("prometheus-alertmanager")
    if found:
        return found
    message = f"{ALERTMANAGER} is not installed (Debian: {INSTALL})"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must install it")
    pytest.skip(message + " (set CI=1 to make this a failure)")


def alertmanager_fingerprint(labels: dict[str, str]) -> str:
    """prometheus/common model.LabelSet.Fingerprint: FNV-1a 64 over sorted `name 0xff value 0xff`."""
    digest = 0xCBF29CE484222325
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int | None = None


@dataclass
class Recorder:
    """ASGI wrapper that keeps what arrived at the webhook, exactly as Alertmanager sent it."""

    app: Any
    deliveries: list[Delivery] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        delivery = Delivery(headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}, body=b"")

        async def keep() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                delivery.body = b"".join(chunks)
            return message

        async def status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                delivery.status = message["status"]
            await send(message)

        self.deliveries.append(delivery)
        await self.app(scope, keep, status)


@pytest.fixture
def alertmanager_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(webhook_url: str) -> Path:
        path = tmp_path / "alertmanager.yml"
        path.write_text(CONFIG.format(url=webhook_url, token=TOKEN))
        return path

    return write


@dataclass
class Alertmanager:
    base: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[Path], Alertmanager]]:
    """`start(config)` runs Alertmanager on a free loopback port; every one started is killed at the end."""
    binary = alertmanager_binary()  # skips (or fails in CI) before anything starts
    processes: list[subprocess.Popen[bytes]] = []
    log_path = tmp_path / "alertmanager.log"

    def start(config: Path) -> Alertmanager:
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={tmp_path / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",  # empty: no gossip, no HA peers to wait for
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        processes.append(process)
        return Alertmanager(f"http://127.0.0.1:{port}", process)

    try:
        yield start
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def log_tail(tmp_path: Path, lines: int = 40) -> str:
    path = tmp_path / "alertmanager.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


async def wait_ready(http: httpx.AsyncClient, am: Alertmanager, tmp_path: Path) -> None:
    async def ready() -> bool:
        if am.process.poll() is not None:
            raise RuntimeError(f"Alertmanager exited with {am.process.returncode}:\n{log_tail(tmp_path)}")
        try:
            return (await http.get(f"{am.base}/-/ready")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await eventually(ready, timeout=DEADLINE)
    except AssertionError as exc:
        raise AssertionError(f"Alertmanager not ready within {DEADLINE} s:\n{log_tail(tmp_path)}") from exc


@pytest.fixture
async def our_api(sqlite_store: Store, tmp_path: Path) -> AsyncIterator[tuple[str, Recorder]]:
    settings = Settings(store=StoreSettings(data_dir=tmp_path), alertmanager=AlertmanagerSettings(webhook_token=TOKEN))
    gateway = TemporalGateway(f"127.0.0.1:{free_port()}", "default", "unused")  # this route needs no Temporal
    recorder = Recorder(
        create_app(Services(settings=settings, store=sqlite_store, temporal=gateway, teams=TeamsConfig()))
    )
    async with serve_app(recorder) as base:
        yield base, recorder


async def test_alertmanager_notifies_firing_then_resolved(
    alertmanager, our_api, alertmanager_config, sqlite_store: Store, tmp_path: Path
) -> None:
    base, recorder = our_api
    am = alertmanager(alertmanager_config(f"{base}{WEBHOOK_PATH}"))
    labels = {"alertname": "CheckoutErrorRate", "service": "checkout", "severity": "critical"}
    starts_at = (datetime.now(UTC) - timedelta(minutes=4)).replace(microsecond=123456)
    alert = {
        "labels": labels,
        "annotations": {"summary": "checkout 5xx above 5% for 2 minutes"},
        "startsAt": rfc3339(starts_at),
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=checkout_5xx_ratio+%3E+0.05",
    }

    async def row(status: str) -> dict[str, Any] | None:
        for stored in await sqlite_store.evidence.alerts_between(*EVER):
            if stored["labels"] == labels and stored["status"] == status:
                return stored
        return None

    async with loopback_client(timeout=10.0) as http:
        await wait_ready(http, am, tmp_path)

        posted = await http.post(f"{am.base}/api/v2/alerts", json=[alert])
        assert posted.status_code == 200, posted.text
        try:
            firing = await eventually(lambda: row("firing"), timeout=DEADLINE)
        except AssertionError as exc:
            raise AssertionError(
                f"no firing alert stored; deliveries {recorder.deliveries}\n{log_tail(tmp_path)}"
            ) from exc
        assert firing["starts_at"] == starts_at
        assert firing["ends_at"] is None
        assert firing["fingerprint"] == alertmanager_fingerprint(labels)
        assert firing["annotations"] == alert["annotations"]
        assert firing["generator_url"] == alert["generatorURL"]

        ends_at = datetime.now(UTC)
        resolve = await http.post(f"{am.base}/api/v2/alerts", json=[{**alert, "endsAt": rfc3339(ends_at)}])
        assert resolve.status_code == 200, resolve.text
        try:
            resolved = await eventually(lambda: row("resolved"), timeout=DEADLINE)
        except AssertionError as exc:
            raise AssertionError(
                f"alert never resolved; deliveries {recorder.deliveries}\n{log_tail(tmp_path)}"
            ) from exc

    assert resolved["fingerprint"] == firing["fingerprint"]
    assert resolved["starts_at"] == starts_at
    assert resolved["ends_at"] == ends_at
    assert len(await sqlite_store.evidence.alerts_between(*EVER)) == 1, "resolving updated the row, added none"

    # What Alertmanager put on the wire, which webhooks/alertmanager.py relies on.
    assert recorder.deliveries and all(d.status == 202 for d in recorder.deliveries), recorder.deliveries
    for delivery in recorder.deliveries:
        assert delivery.headers["authorization"] == f"Bearer {TOKEN}"
        assert delivery.headers["user-agent"].startswith("Alertmanager/")
        assert delivery.headers["content-type"] == "application/json"
    bodies = [json.loads(d.body) for d in recorder.deliveries]
    assert {b["version"] for b in bodies} == {"4"}
    sent = [a for b in bodies for a in b["alerts"]]
    assert {a["fingerprint"] for a in sent} == {firing["fingerprint"]}
    assert [a["endsAt"] for a in sent if a["status"] == "firing"][:1] == [ZERO_TIME]
