"""The API's view of Temporal: start a post-mortem, end one, and say whether Temporal is there.

The client connects lazily, so the API starts (and answers /healthz) while Temporal is still
coming up; a request that needs Temporal then gets a 503 that tells the sender to retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, Interceptor, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from postmortem.app.temporal import TemporalConnection, connect
from postmortem.models import IncidentEvent
from postmortem.workflows.identity import workflow_id_for
from postmortem.workflows.inputs import HISTORY_THRESHOLD, PostmortemWorkflowInput
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow


class TemporalUnavailable(Exception):
    pass


class UpdateRejected(Exception):
    """The workflow refused a person's request (its validator said why); nothing changed.

    `status` is the HTTP status the refusal carries (403 wrong caller, 404 not there, 409 wrong state,
    422 bad input); 409 when the workflow gave none (e.g. a step of the Update failed)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class WorkflowGone(Exception):
    """The report's workflow is no longer running (finished, or terminated)."""


class TemporalRefused(Exception):
    """Temporal rejected the request itself (e.g. a payload over its size limit): retrying cannot help."""


class StartOutcome(StrEnum):
    ACCEPTED = "accepted"  # started, or landed on the run already under way for this incident
    ALREADY_DONE = "already_done"  # the report's workflow already finished (e.g. skipped by policy)


# PagerDuty waits 5 s for an answer; a slower Temporal gets a 503 and PagerDuty retries later.
START_TIMEOUT = timedelta(seconds=3)
# An update waits for its quick activities (recording the decision; a deleted report's cancellation).
UPDATE_TIMEOUT = timedelta(seconds=60)
REFUSED = "TransitionRefused"  # the failure type of a validator's refusal; its first detail is the status


class TemporalGateway:
    def __init__(
        self,
        address: str | TemporalConnection,
        namespace: str,
        task_queue: str,
        client: Client | None = None,
        *,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        """`address`: a bare `host:port` (plain gRPC in `namespace`), or a resolved connection (its namespace wins);
        `interceptors` go on the client it connects (tracing)."""
        self._interceptors = list(interceptors)
        self._connection = (
            address if isinstance(address, TemporalConnection) else TemporalConnection(address, namespace)
        )
        self._address = self._connection.address
        self.task_queue = task_queue
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await connect(self._connection, interceptors=self._interceptors)
                    except RuntimeError as exc:
                        raise TemporalUnavailable(f"Temporal at {self._address} is unreachable: {exc}") from exc
        return self._client

    async def start_postmortem(
        self,
        postmortem_id: str,
        event: IncidentEvent,
        delivery_id: str | None = None,
        *,
        history_threshold: int = HISTORY_THRESHOLD,
    ) -> tuple[str, StartOutcome]:
        """`delivery_id` names the inbox entry that holds the incident's raw payload (then left out of `event`);
        past `history_threshold` events the run continues as new."""
        client = await self.client()
        workflow_id = workflow_id_for(postmortem_id)
        try:
            await client.start_workflow(
                PostmortemWorkflow.run,
                PostmortemWorkflowInput(
                    postmortem_id=postmortem_id,
                    event=event,
                    delivery_id=delivery_id,
                    history_threshold=history_threshold,
                ),
                id=workflow_id,
                task_queue=self.task_queue,
                # A duplicate delivery while the report is alive lands on the same run. After the run
                # closed (skipped by policy, or deleted) a new resolve may start again: the store's
                # unique key per incident still makes it find the skipped report instead of a second.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                rpc_timeout=START_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            return workflow_id, StartOutcome.ALREADY_DONE
        except RPCError as exc:
            _refused(exc, f"Temporal refused to start {workflow_id}")
            raise TemporalUnavailable(f"Temporal refused to start {workflow_id}: {exc.message}") from exc
        return workflow_id, StartOutcome.ACCEPTED

    async def update(self, workflow_id: str, update: Any, argument: BaseModel, update_id: str | None) -> Any:
        """Run a Temporal Update; a retried HTTP call with the same id is applied once."""
        client = await self.client()
        handle = client.get_workflow_handle(workflow_id)
        try:
            return await handle.execute_update(update, argument, id=update_id, rpc_timeout=UPDATE_TIMEOUT)
        except WorkflowUpdateFailedError as exc:
            raise rejection(exc) from exc
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND or "already completed" in exc.message:
                raise WorkflowGone(exc.message) from exc
            raise TemporalUnavailable(f"Temporal did not take the update: {exc.message}") from exc

    async def signal(self, workflow_id: str, signal: Any, argument: BaseModel | None) -> None:
        client = await self.client()
        handle = client.get_workflow_handle(workflow_id)
        try:
            if argument is None:
                await handle.signal(signal, rpc_timeout=START_TIMEOUT)
            else:
                await handle.signal(signal, argument, rpc_timeout=START_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowGone(exc.message) from exc
            _refused(exc, f"Temporal refused the signal to {workflow_id}")
            raise TemporalUnavailable(f"Temporal did not take the signal: {exc.message}") from exc

    async def cancel(self, workflow_id: str) -> None:
        """Ask a workflow to end (e.g. the follow-ups of a report deleted after its own run completed);
        one that is not running is left as it is."""
        client = await self.client()
        try:
            await client.get_workflow_handle(workflow_id).cancel(rpc_timeout=START_TIMEOUT)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND and "already completed" not in exc.message:
                raise TemporalUnavailable(f"could not cancel workflow {workflow_id}: {exc.message}") from exc

    async def terminate(self, workflow_id: str, reason: str) -> None:
        client = await self.client()
        try:
            await client.get_workflow_handle(workflow_id).terminate(reason=reason)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise TemporalUnavailable(f"could not end workflow {workflow_id}: {exc.message}") from exc

    async def status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        client = await self.client()
        try:
            return (await client.get_workflow_handle(workflow_id).describe()).status
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise TemporalUnavailable(str(exc.message)) from exc

    async def ping(self) -> None:
        client = await self.client()
        try:
            await client.service_client.check_health(timeout=timedelta(seconds=2))
        except RPCError as exc:
            raise TemporalUnavailable(f"Temporal health check failed: {exc.message}") from exc


def rejection(exc: WorkflowUpdateFailedError) -> UpdateRejected:
    """The refusal as the API answers it: the validator's words and status, or the innermost reason of
    a failed step (an activity's own words, not "Activity task failed") with 409."""
    cause: BaseException | None = exc.cause
    if isinstance(cause, ApplicationError) and cause.type == REFUSED:
        return UpdateRejected(cause.message, _status(cause.details))
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause  # type: ignore[union-attr]
    return UpdateRejected(getattr(cause, "message", None) or str(cause or exc))


def _status(details: Sequence[Any]) -> int:
    status = details[0] if details else None
    return status if isinstance(status, int) and 400 <= status < 500 else 409


def _refused(exc: RPCError, what: str) -> None:
    """INVALID_ARGUMENT is an answer about the request, not about Temporal's health: do not retry it."""
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        raise TemporalRefused(f"{what}: {exc.message}") from exc
