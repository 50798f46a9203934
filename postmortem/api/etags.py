"""ETag / If-Match for optimistic concurrency: the ETag is the stored version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, HTTPException

IF_MATCH = "If-Match"

IfMatchHeader = Annotated[
    str | None,
    Header(
        alias=IF_MATCH,
        description='the ETag you read, such as "3"; without it the edit is refused with 428',
    ),
]
"""The If-Match of a versioned edit. Required, and documented as required (postmortem.api.errors marks it
so in the OpenAPI); optional to FastAPI only so that its absence answers 428 Precondition Required
(RFC 6585), with a sentence, rather than FastAPI's 422."""


def etag(version: int) -> str:
    return f'"{version}"'


def required_version(if_match: str | None) -> int:
    if if_match is None:
        raise HTTPException(428, "If-Match header required: send the ETag you read, so no edit is lost")
    value = if_match.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not (value.isascii() and value.isdigit() and len(value) <= 18):  # "²".isdigit(), yet int("²") fails
        raise HTTPException(400, f"malformed If-Match header {if_match!r}: expected an ETag such as '\"3\"'")
    return int(value)
