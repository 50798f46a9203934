"""Log lines as text for people or as one JSON object per line for a log pipeline (POSTMORTEM_LOG_FORMAT).

Every line written while one report is being handled carries its ids — `postmortem_id`,
`incident_id`, `workflow_id` — as fields of their own, so a log search for one report finds the
webhook that started it, the relay's hand-over and every activity of its workflow, whichever process
wrote them. The ids live in context variables: `report_context` sets them for a block (the webhook
route, the relay per delivery, the worker's activity interceptor), and asyncio copies them into
every task started inside it, so concurrent reports never mix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

from postmortem.workflows.identity import follow_up_id_for, workflow_id_for

LogFormat = Literal["text", "json"]
FIELDS = ("postmortem_id", "incident_id", "workflow_id")
_context: ContextVar[dict[str, str] | None] = ContextVar("postmortem_log_context", default=None)


def current_context() -> dict[str, str]:
    return dict(_context.get() or {})


@contextlib.contextmanager
def report_context(
    *, postmortem_id: str | None = None, incident_id: str | None = None, workflow_id: str | None = None
) -> Iterator[None]:
    """The ids of the report this block works on (those given; the workflow id follows from the report's)."""
    values = current_context()
    if postmortem_id:
        values["postmortem_id"] = postmortem_id
        values.setdefault("workflow_id", workflow_id_for(postmortem_id))
    if incident_id:
        values["incident_id"] = incident_id
    if workflow_id:
        values["workflow_id"] = workflow_id
    token = _context.set(values)
    try:
        yield
    finally:
        _context.reset(token)


def incident_of_workflow(workflow_id: str) -> tuple[str | None, str | None]:
    """(postmortem id, incident id) from a report's workflow id (`postmortem-<source>-<incident id>`, or
    its follow-up's `followup-…`); (None, None) for any other id."""
    for prefix in (workflow_id_for(""), follow_up_id_for("")):
        if workflow_id.startswith(prefix):
            postmortem_id = workflow_id[len(prefix) :]
            _, _, incident_id = postmortem_id.partition("-")
            return postmortem_id, incident_id or None
    return None, None


class _ContextFilter(logging.Filter):
    """Puts the report's ids on every record (records from libraries too), as attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the report's ids, the error."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the report's ids at the end when there are any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{name}={value}" for name in FIELDS if (value := getattr(record, name, None)) is not None)
        return f"{text} [{ids}]" if ids else text


def log_handler(log_format: LogFormat = "text", stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `log_format` lines (with the report's ids) to `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    return handler


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """The root logger writes to stderr in `log_format`; uvicorn's loggers go through it too (their
    own handlers are not installed: runtime passes `log_config=None`)."""
    handler = log_handler(log_format)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
