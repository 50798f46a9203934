"""`postmortem dev`'s Temporal worker, in a process of its own, supervised like the dev server.

The worker drafts reports (templates, evidence, the store) and, on publishing, renders the exports
and the PDF: CPU-heavy work that, on the API's event loop, made every webhook wait behind it. So
`postmortem dev` runs the worker as `postmortem worker` in a child process of the same tree:

* the same process group: Ctrl-C in a terminal reaches all three (API, worker, Temporal) at once,
  and `stop()` ends the worker when only the parent was asked to stop (SIGTERM from a supervisor);
* the child ends by itself when its parent is gone (`--exit-with-parent`), so a SIGKILLed
  `postmortem dev` leaves no orphan worker polling the task queue;
* `supervise` restarts it whenever it exits without being asked to, with a growing delay, logging
  every exit; a worker that keeps dying at once (MAX_QUICK_EXITS in a row, each within
  STABLE_AFTER of its start) ends `postmortem dev` with an error rather than restarting it forever;
* it runs at the same CPU priority as the API: a lower one (nice) was tried and made acks far slower,
  since the worker holds SQLite's write lock (one database file for both processes) while it waits
  for the CPU, and the API's commit waits for that lock;
* its pid is in `worker.pid` in the data folder (beside `temporal.pid`) while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from postmortem.app.devserver import RESTART_DELAY_FIRST, RESTART_DELAY_MAX, STABLE_AFTER, STOP_GRACE, describe_exit

logger = logging.getLogger("postmortem.worker_process")

MAX_QUICK_EXITS = 5
STOP_TIMEOUT = 30.0


class WorkerProcessError(RuntimeError):
    """The worker process keeps dying: `postmortem dev` stops and says so."""


def worker_command(parent_pid: int) -> list[str]:
    """`postmortem worker`, run by this interpreter, told to end with its parent."""
    return [sys.executable, "-m", "postmortem.app.cli", "worker", "--exit-with-parent", str(parent_pid)]


async def stop_when_orphaned(parent_pid: int, stop: asyncio.Event, interval: float = 0.5) -> None:
    """Set `stop` once `parent_pid` is no longer this process's parent (it died; we were re-parented)."""
    while not stop.is_set():
        if os.getppid() != parent_pid:
            logger.warning("the parent process %s is gone; the worker stops", parent_pid)
            stop.set()
            return
        await asyncio.sleep(interval)


class WorkerProcess:
    def __init__(
        self,
        data_dir: Path,
        temporal_address: str,
        *,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.temporal_address = temporal_address
        self.pid_file = data_dir / "worker.pid"
        self._command = list(command) if command is not None else worker_command(os.getpid())
        self._env = dict(os.environ if env is None else env)
        # The child reads the same settings as this process, but is told where Temporal is.
        self._env["POSTMORTEM_TEMPORAL_ADDRESS"] = temporal_address
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._started_at = 0.0
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the child (its output goes where ours goes); the pid goes to `pid_file`."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stopping = False
        process = self._process = await asyncio.create_subprocess_exec(
            *self._command, env=self._env, stdin=asyncio.subprocess.DEVNULL
        )
        self._started_at = asyncio.get_running_loop().time()
        self.pid_file.write_text(f"{process.pid}\n")

    async def supervise(self, stop: asyncio.Event | None = None) -> None:
        """Restart the worker whenever it exits unasked; raises WorkerProcessError when it keeps dying.

        `stop` is the service's own stop request: an exit that comes with it (Ctrl-C reaches both) is
        not a crash.
        """
        loop = asyncio.get_running_loop()
        quick_exits = 0
        delay = 0.0
        while not self._stopping:
            process = self._process
            if process is None:
                return
            code = await process.wait()
            if stop is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), STOP_GRACE)
            if self._stopping or self._process is not process or (stop is not None and stop.is_set()):
                return
            self._forget(process)
            if loop.time() - self._started_at >= STABLE_AFTER + STOP_GRACE:
                quick_exits, delay = 0, 0.0
            else:
                quick_exits += 1
            if quick_exits >= MAX_QUICK_EXITS:
                raise WorkerProcessError(
                    f"the worker process exited {quick_exits} times in a row, each within {STABLE_AFTER:g} s of "
                    f"starting (last: {describe_exit(code)}); its output is above"
                )
            logger.warning(
                "the worker process exited (%s); restarting it%s",
                describe_exit(code),
                f" in {delay:g} s" if delay else "",
            )
            await self._pause(delay, stop)
            delay = min(max(delay * 2, RESTART_DELAY_FIRST), RESTART_DELAY_MAX)
            if self._stopping or (stop is not None and stop.is_set()):
                return
            await self.start()
            self.restarts += 1
            logger.warning("the worker process is back (pid %s)", self.pid)

    async def _pause(self, seconds: float, stop: asyncio.Event | None) -> None:
        if seconds <= 0:
            return
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    def _forget(self, process: asyncio.subprocess.Process) -> None:
        if self._process is process:
            self._process = None
        with contextlib.suppress(OSError):
            if self.pid_file.read_text().strip() == str(process.pid):
                self.pid_file.unlink()

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop for good: SIGTERM (a graceful worker shutdown), SIGKILL after `timeout`."""
        self._stopping = True
        process = self._process
        if process is None:
            return
        self._forget(process)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
