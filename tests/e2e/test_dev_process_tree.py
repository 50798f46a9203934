"""`postmortem dev`'s process tree: the API, the worker in a process of its own, the Temporal dev server.

The worker is a child of the `postmortem dev` process (same process group, its pid in worker.pid),
so no draft ever runs on the event loop that answers webhooks; Ctrl-C stops every part; a worker
that dies is started again; a worker whose parent is gone stops by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dev_service import DevService, running, wait_ready
from tests.factories import pagerduty_resolved_body
from tests.support import eventually

pytestmark = pytest.mark.e2e

SECRET = "tree-pagerduty-secret"
ADMIN = "tree-admin-token"


def signed(body: bytes) -> dict[str, str]:
    return {"X-PagerDuty-Signature": "v1=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[DevService]:
    with running(DevService(tmp_path, {"POSTMORTEM_PAGERDUTY_WEBHOOK_SECRETS": SECRET}, admin_token=ADMIN)) as started:
        yield started


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def command_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


async def pid_in(path: Path, *, other_than: int | None = None) -> int:
    async def read() -> int | None:
        try:
            pid = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid != other_than and alive(pid) else None

    return await eventually(read, timeout=60, interval=0.1)


async def drafted(http: httpx.AsyncClient, incident_id: str) -> None:
    body = pagerduty_resolved_body(incident_id)
    assert (await http.post("/webhooks/pagerduty", content=body, headers=signed(body))).status_code == 202

    async def check() -> bool:
        answer = await http.get(f"/api/postmortems/pagerduty-{incident_id}")
        return answer.status_code == 200 and answer.json()["status"] == "DRAFT"

    await eventually(check, timeout=60, interval=0.2)


async def test_the_worker_has_its_own_process_and_ctrl_c_stops_every_part(service: DevService) -> None:
    async with service.client() as http:
        await wait_ready(http, service)
        assert service.process is not None
        main = service.process.pid
        worker = await pid_in(service.data_dir / "worker.pid")
        temporal = await pid_in(service.data_dir / "temporal.pid")
        assert len({main, worker, temporal}) == 3
        assert parent_of(worker) == main and parent_of(temporal) == main
        command = command_of(worker)
        assert command[command.index("worker") + 1 : command.index("worker") + 3] == ["--exit-with-parent", str(main)]
        assert os.getpgid(worker) == os.getpgid(main) == os.getpgid(temporal)  # one group: Ctrl-C reaches all
        assert f"Worker       its own process (pid {worker})" in service.output()
        await drafted(http, "PTREE1")  # the worker process drafts what the API process received

    os.killpg(main, signal.SIGINT)  # what a terminal does on Ctrl-C
    assert service.process.wait(timeout=60) == 0
    service.process = None
    await eventually(lambda: _async(not alive(worker) and not alive(temporal)), timeout=30)
    assert "Stopped." in service.output()
    assert not (service.data_dir / "worker.pid").exists()


async def _async(value: bool) -> bool:
    return value


async def test_a_worker_that_dies_is_started_again_and_a_stop_of_the_parent_alone_stops_it(
    service: DevService,
) -> None:
    async with service.client() as http:
        await wait_ready(http, service)
        first = await pid_in(service.data_dir / "worker.pid")
        os.kill(first, signal.SIGKILL)
        second = await pid_in(service.data_dir / "worker.pid", other_than=first)
        assert parent_of(second) == service.process.pid  # type: ignore[union-attr]
        assert "the worker process exited (code -9, killed by SIGKILL); restarting it" in service.output()
        await drafted(http, "PTREE2")  # and it works

    assert service.process is not None
    service.process.send_signal(signal.SIGTERM)  # a supervisor stopping the service: only the parent hears it
    assert service.process.wait(timeout=60) == 0
    service.process = None
    await eventually(lambda: _async(not alive(second)), timeout=30)


async def test_a_worker_whose_parent_is_gone_stops_by_itself(service: DevService) -> None:
    async with service.client() as http:
        await wait_ready(http, service)
    worker = await pid_in(service.data_dir / "worker.pid")
    temporal = await pid_in(service.data_dir / "temporal.pid")
    assert service.process is not None
    service.process.kill()  # the parent alone, without a chance to stop its children
    service.process.wait(timeout=30)
    service.process = None
    try:
        await eventually(lambda: _async(not alive(worker)), timeout=30)
    finally:
        if alive(temporal):  # not the worker's business: the dev server is left to us here
            os.kill(temporal, signal.SIGKILL)
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
