"""The errors every store raises: a missing row, and a write that names a version no longer stored."""

from __future__ import annotations

__all__ = ["NotFound", "VersionConflict"]


class NotFound(LookupError):
    pass


class VersionConflict(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the stored version is {current}")
        self.current = current
