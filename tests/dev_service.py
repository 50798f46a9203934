"""`postmortem dev` as a subprocess, as a user runs it: the service the e2e and reliability tests drive.

One on free ports with its own data folder, restartable on the same folder; in a session of its own,
so a hard kill of the group takes the whole tree (dev server, worker, API) like a crash would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support import eventually, free_port


class DevService:
    def __init__(self, data_dir: Path, settings: Mapping[str, str], *, admin_token: str) -> None:
        """`settings`: the POSTMORTEM_* variables of this run beyond its folder and ports."""
        self.data_dir = data_dir
        self.port = free_port()
        self.temporal_port = free_port()
        self.admin_token = admin_token
        # Only our settings: a POSTMORTEM_* variable from the caller's shell must not change the run.
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("POSTMORTEM_")}
        self.env.update(
            POSTMORTEM_DATA_DIR=str(data_dir),
            POSTMORTEM_PORT=str(self.port),
            POSTMORTEM_TEMPORAL_PORT=str(self.temporal_port),
            POSTMORTEM_TEMPORAL_UI_PORT=str(free_port()),
            POSTMORTEM_BOOTSTRAP_ADMIN_TOKEN=admin_token,
            **settings,
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "service.log"
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [str(Path(sys.executable).parent / "postmortem"), "dev"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill_group(self) -> None:
        """SIGKILL the service's whole process group at once: the dev server, worker and API die together."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        self.process = None

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Stop as a user would (Ctrl-C is SIGINT), or crash it (SIGKILL: the whole group); its exit code."""
        process = self.process
        assert process is not None
        if sig == signal.SIGKILL:
            self.kill_group()
        else:
            process.send_signal(sig)
            process.wait(timeout=60)
            self.process = None
        return process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        return httpx.AsyncClient(
            base_url=self.base,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            limits=limits,
            **kwargs,
        )


Service = TypeVar("Service", bound=DevService)


@contextlib.contextmanager
def running(service: Service) -> Iterator[Service]:
    """The service started, and killed at the end if the test left it running (a test's fixture)."""
    service.start()
    try:
        yield service
    finally:
        if service.process is not None:
            service.kill_group()


async def wait_ready(http: httpx.AsyncClient, service: DevService, timeout: float = 90) -> None:
    """Until /readyz is green; fails at once, with the service's output, if the service exited."""

    async def ready() -> bool:
        assert service.process is None or service.process.poll() is None, service.output()
        try:
            return (await http.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready, timeout=timeout, interval=0.2)
