"""ETag / If-Match for optimistic concurrency: the ETag is the stored version."""

from __future__ import annotations

from fastapi import HTTPException


def etag(version: int) -> str:
    return f'"{version}"'


def required_version(if_match: str | None) -> int:
    if if_match is None:
        raise HTTPException(428, "If-Match header required: send the ETag you read, so no edit is lost")
    value = if_match.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise HTTPException(400, f"malformed If-Match header {if_match!r}: expected an ETag such as '\"3\"'")
    return int(value)
