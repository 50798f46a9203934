"""Helpers shared by the tests: real binaries, free ports, polling with a deadline."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed; run scripts/test.sh")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll `check` until it returns a truthy value (or stops raising AssertionError) before the deadline."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = await check()
            if result:
                return result
        except AssertionError as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s") from last_error
        await asyncio.sleep(interval)


def next_working_day(start: datetime, zone: str, working_days: tuple[int, ...] = (0, 1, 2, 3, 4)) -> datetime:
    """The same wall-clock time on the team's next working day (a reschedule that stays inside its hours)."""
    local = start.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    moved = local + timedelta(days=1)
    while moved.weekday() not in working_days:
        moved += timedelta(days=1)
    return moved.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
