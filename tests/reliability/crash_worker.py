"""The worker of tests/reliability/test_crash_every_step.py: ours, built by `build_worker` from the
environment's settings as `postmortem worker` builds it, with two test-only additions.

    CRASH_ACTIVITY=send_invite CRASH_MOMENT=start CRASH_MARKER=/tmp/x/crash-1.json \
    CRASH_GO=/tmp/x/go-1 python -m tests.reliability.crash_worker

* `CRASH_ACTIVITY`: inside that activity the worker announces itself in the marker file and then hangs,
  so the test can SIGKILL it right there. `CRASH_MOMENT` says where: `start` — before the activity's
  body runs; `after` — once the body returned (its side effects done) but before its result reaches
  Temporal. Only the first invocation that gets there hangs; the marker says which, and this worker's
  identity, by which the test finds the attempts the dead worker leaves behind.
  The hang is harness, an activity interceptor on the worker's client (a client's interceptors that are
  also worker interceptors apply to its workers), not a change of our code.
* `CRASH_GO`: the worker is built (workflow validation, its store opened) and then waits for that file
  to exist before it polls, so the test can have the next worker ready when it kills one.

* `CRASH_DOOMED`: no hang, but the test will kill this worker (it runs without a workflow cache, below).

`python -m tests.reliability.crash_worker zygote <socket>` forks such workers on request (see `zygote`).

A worker that is to crash runs without a workflow cache, hence without a sticky queue: the time-skipping
test server routes a workflow's next task to the sticky queue of the worker that ran its last one and
never times that out (a real server does, after 5 s), so the workflows of a killed sticky worker would
wait for it forever.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker import Interceptor as WorkerInterceptor

from postmortem.app.runtime import foundation
from postmortem.app.settings import Settings
from postmortem.app.temporal import ensure_search_attributes
from postmortem.app.worker import build_worker

ACTIVITY = "CRASH_ACTIVITY"
MOMENT = "CRASH_MOMENT"
MARKER = "CRASH_MARKER"
GO = "CRASH_GO"
DOOMED = "CRASH_DOOMED"
MOMENTS = ("start", "after")
QUIET = 0.3  # seconds without an activity body or a workflow task running before the crash is announced


class Busy:
    """What this worker is doing: activity bodies and workflow activations under way, and when it last did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # activations run on the workflow task threads
        self._running = 0
        self._since = time.monotonic()

    def enter(self) -> None:
        with self._lock:
            self._running += 1

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            self._since = time.monotonic()

    def quiet(self) -> bool:
        with self._lock:
            return self._running == 0 and time.monotonic() - self._since >= QUIET


class ObservedRunner(WorkflowRunner):
    """The worker's own workflow runner, unchanged, with each activation counted in `busy`."""

    def __init__(self, inner: WorkflowRunner, busy: Busy) -> None:
        self._inner, self._busy = inner, busy

    def prepare_workflow(self, defn: Any) -> None:
        self._inner.prepare_workflow(defn)

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self._inner.set_worker_level_failure_exception_types(types)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ObservedInstance(self._inner.create_instance(det), self._busy)


class _ObservedInstance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance, busy: Busy) -> None:
        self._inner, self._busy = inner, busy

    def activate(self, act: Any) -> Any:
        self._busy.enter()
        try:
            return self._inner.activate(act)
        finally:
            self._busy.leave()

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


def announce(marker: Path, identity: str, moment: str) -> None:
    """Write the marker atomically: the test reads it the moment it appears."""
    info = activity.info()
    record = {
        "activity_type": info.activity_type,
        "activity_id": info.activity_id,
        "attempt": info.attempt,
        "workflow_id": info.workflow_id,
        "identity": identity,
        "moment": moment,
        "pid": os.getpid(),
    }
    draft = marker.with_name(f"{marker.name}.draft")
    draft.write_text(json.dumps(record))
    draft.replace(marker)


class CrashInterceptor(ClientInterceptor, WorkerInterceptor):
    def __init__(self, activity: str, moment: str, marker: Path, identity: str) -> None:
        if moment not in MOMENTS:
            raise ValueError(f"{MOMENT} must be one of {MOMENTS}, not {moment!r}")
        self.activity, self.moment, self.marker, self.identity = activity, moment, marker, identity
        self.busy = Busy()
        self.frozen = False  # the crash is claimed: no activity body starts any more

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Hang(next, self)


class _Hang(ActivityInboundInterceptor):
    """The chosen activity hangs (at its start, or after its body). The crash is announced once nothing else
    of this worker runs (no activity body, no workflow task, for `QUIET` seconds), and from then on no
    activity body starts: the kill then lands between steps for everything but the chosen activity, so
    each case is the same every time. (A workflow task lost with the worker would cost its 10 s timeout
    in real time; a kill in the middle of a side effect, between the upstream's yes and our record of
    it, is a case of its own.)"""

    def __init__(self, next: ActivityInboundInterceptor, crash: CrashInterceptor) -> None:
        super().__init__(next)
        self._crash = crash

    async def _body(self, input: ExecuteActivityInput) -> Any:
        crash = self._crash
        if crash.frozen:
            await asyncio.Event().wait()  # held at its start until the kill
        crash.busy.enter()
        try:
            return await super().execute_activity(input)
        finally:
            crash.busy.leave()

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        crash = self._crash
        if activity.info().activity_type != crash.activity or crash.frozen:
            return await self._body(input)
        result = await self._body(input) if crash.moment == "after" else None
        if crash.frozen:  # another invocation claimed the crash meanwhile
            return result if crash.moment == "after" else await self._body(input)
        crash.frozen = True
        while not crash.busy.quiet():
            await asyncio.sleep(0.02)
        announce(crash.marker, crash.identity, crash.moment)
        await asyncio.Event().wait()  # until SIGKILL


async def main() -> None:
    settings = Settings()
    address = settings.temporal.address or f"127.0.0.1:{settings.temporal.port}"
    identity = f"test-worker-{os.getpid()}@{socket.gethostname()}"
    target = os.environ.get(ACTIVITY)
    crash = (
        CrashInterceptor(target, os.environ.get(MOMENT, "start"), Path(os.environ[MARKER]), identity)
        if target
        else None
    )

    async def connect(**options: Any) -> Client:
        return await Client.connect(
            address, namespace=settings.temporal.namespace, data_converter=pydantic_data_converter, **options
        )

    client = await connect(interceptors=[crash] if crash else [], identity=identity)
    await ensure_search_attributes(client)
    async with foundation(settings) as parts:
        # Built on a client of its own (a client refuses a second worker for one task queue), then run on ours.
        built = build_worker(
            await connect(),
            task_queue=settings.temporal.task_queue,
            store=parts.store,
            teams=parts.teams,
            settings=settings,
        )
        config = built.config()
        if crash is not None:
            config["workflow_runner"] = ObservedRunner(config["workflow_runner"], crash.busy)
        if crash is not None or os.environ.get(DOOMED):
            config["max_cached_workflows"] = 0
        config["client"], config["identity"] = client, identity
        worker = Worker(**config)
        if go := os.environ.get(GO):
            while not Path(go).exists():
                await asyncio.sleep(0.02)
        await worker.run()


def zygote(path: Path) -> None:
    """Serve `fork` requests on the Unix socket `path`: each is one line of JSON, `{"env": {...}, "log": "…"}`,
    answered with the pid of a worker forked from this process, which has imported everything already.

    Importing our code and the SDK takes a worker seconds of CPU; a test that starts three workers per case
    pays it once this way. Forking is safe here: nothing has started a thread yet (the SDK starts its
    runtime on the first connection, in the child). Children are reaped by the kernel (SIGCHLD ignored),
    so a killed worker is gone at once; the test tells a live one by its pid."""
    assert threading.active_count() == 1, "a zygote must not fork with threads running"
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    while True:
        connection, _ = server.accept()
        with connection, connection.makefile("rwb") as stream:
            request = json.loads(stream.readline())
            pid = os.fork()
            if pid == 0:
                server.close()
                _become_worker(request["env"], request["log"])
            stream.write(f"{pid}\n".encode())
            stream.flush()


def _become_worker(env: dict[str, str], log: str) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.environ.clear()
    os.environ.update(env)
    code = 0
    try:
        asyncio.run(main())
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["zygote"]:
        zygote(Path(sys.argv[2]))
    else:
        asyncio.run(main())
