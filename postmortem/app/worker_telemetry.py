"""What the worker tells operators: the SDK's Prometheus metrics plus ours, and the report's ids on its log lines.

`worker_runtime` gives the worker's client a Temporal runtime whose metrics (the SDK's own: task
latencies, poll results, slots, activity and workflow outcomes) are served for Prometheus at
POSTMORTEM_WORKER_METRICS_ADDRESS. Our metrics go through the same meter, so one scrape target per
worker has everything:

- `postmortem_activity_failures{activity_type, kind}`: every failed attempt, by the failure's type
  (an ApplicationError's `type`, e.g. `UpstreamError`, else the exception's class);
- `postmortem_problems_recorded{step}`: side effects that failed for good and became a problem on a
  report (the `record_problem` activity), by the step (`send_invite`, `open_tickets`, …).

`ActivityTelemetry` (a worker interceptor, always on) also sets the report's log context
(postmortem.app.logs) for the activity, so each line an activity logs carries its report's ids.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from postmortem.app.logs import incident_of_workflow, report_context

FAILURES = "postmortem_activity_failures"
PROBLEMS = "postmortem_problems_recorded"
RECORD_PROBLEM = "record_problem"


class WorkerMetricsError(RuntimeError):
    """The metrics address cannot be served (taken, or not host:port)."""


def worker_runtime(address: str | None) -> Runtime | None:
    """A runtime serving Prometheus metrics at `address` (`host:port`); None (the SDK's default) when unset.

    One per process: the runtime owns the HTTP listener, and every client the worker makes (it
    reconnects after a failure) must share it.
    """
    if not address:
        return None
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except Exception as exc:  # the bridge reports a bad or busy address as a plain error
        raise WorkerMetricsError(
            f"cannot serve the worker's metrics at POSTMORTEM_WORKER_METRICS_ADDRESS={address}: {exc}"
        ) from exc


class ActivityTelemetry(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)


def failure_kind(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError) and exc.type:
        return exc.type
    return type(exc).__name__


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        postmortem_id, incident_id = incident_of_workflow(info.workflow_id or "")
        argument = input.args[0] if input.args else None
        postmortem_id = getattr(argument, "postmortem_id", None) or postmortem_id
        with report_context(postmortem_id=postmortem_id, incident_id=incident_id, workflow_id=info.workflow_id):
            try:
                result = await super().execute_activity(input)
            except Exception as exc:
                _count(FAILURES, "Failed activity attempts, by the failure's type", {"kind": failure_kind(exc)})
                raise
            if info.activity_type == RECORD_PROBLEM:
                step = str(getattr(argument, "step", "unknown"))
                _count(PROBLEMS, "Side effects that failed for good and became a problem on a report", {"step": step})
            return result


def _count(name: str, description: str, attributes: dict[str, str]) -> None:
    meter = _meter()
    if meter is not None:
        meter.create_counter(name, description).add(1, attributes)


def _meter() -> MetricMeter | None:
    try:
        return activity.metric_meter()
    except RuntimeError:  # no meter for this kind of activity: nothing to count into
        return None
