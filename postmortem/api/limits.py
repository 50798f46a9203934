"""Hard limits on what a request may carry, checked once for every route: size, JSON depth, text.

A body is read with a cap (a declared Content-Length over it is refused before a byte is read, a
stream that outgrows it is dropped as soon as it does): 413. JSON is checked for depth by a scan that
does not recurse, before anything parses it (Python's json recurses, so 100,000 levels would be a
RecursionError, a 500): 400. Text that is not valid UTF-8 is 400; a string (or key) holding NUL or a
lone surrogate is 422 naming its JSON path: PostgreSQL cannot store either, and no encoder can write
a lone surrogate back out.

`BodyLimits` applies this to every route outside /webhooks (the webhooks read their bodies with
their own caps through `read_capped` and `load_json`, in postmortem.webhooks.payload); the image
upload's multipart body is left to its own streaming reader (postmortem.api.images) and only guarded
here against being read whole by a route that does not expect it.
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import AsyncIterator
from datetime import date, datetime
from itertools import accumulate
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AwareDatetime, BeforeValidator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postmortem.config import LimitsSettings

WEBHOOKS = "/webhooks/"


class InputRejected(HTTPException):
    """A request refused for what it carries. A Starlette HTTPException, so FastAPI's own body reading
    passes it on and the error handlers answer it as `{"detail": …}` with its status."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(status_code, detail)
        self.message = detail


# Reading with a cap ---------------------------------------------------------------------------


def declared_length(value: str | None) -> int | None:
    """Content-Length as a number; None when absent or not a number (ASCII digits: "²".isdigit() is true)."""
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    return int(value) if len(value) <= 18 else 10**18  # past 18 digits int() may refuse; too large anyway


def too_large(limit: int, setting: str, declared: int | None = None) -> InputRejected:
    size = f"is {declared} bytes" if declared is not None else f"is over {limit} bytes"
    return InputRejected(413, f"request body {size}; the limit here is {limit} bytes ({setting})")


async def read_capped(chunks: AsyncIterator[bytes], limit: int, setting: str, declared: int | None = None) -> bytes:
    """The whole body, or 413 as soon as it is known to be over `limit` (never more than one chunk past it)."""
    if declared is not None and declared > limit:
        raise too_large(limit, setting, declared)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large(limit, setting)
    return bytes(body)


# JSON: depth, syntax, text ----------------------------------------------------------------------

# A string token, its closing quote optional: an unterminated string then runs to the end in one linear
# match (a required quote would make the engine rescan from every later quote: quadratic).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep the arrays and objects of `text` nest, read without parsing (linear, no recursion).

    Brackets inside strings do not count; for text that is not JSON the number is what a parser
    would have had to descend before it found out.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets))))


def check_depth(text: str, max_depth: int) -> None:
    depth = json_depth(text)
    if depth > max_depth:
        raise InputRejected(
            400,
            f"JSON nested {depth} levels deep; the limit is {max_depth} ({LimitsSettings.variable('json_max_depth')})",
        )


def decoded(body: bytes) -> str:
    """The body as UTF-8, strictly (JSON is UTF-8: RFC 8259); 400 names the first bad byte."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRejected(400, f"request body is not valid UTF-8 (byte {exc.start}: {exc.reason})") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(path: tuple[str | int, ...]) -> str:
    """`$.sections.summary.body`, `$.alerts[0]`, `$["odd key"]`: always ASCII, so it is safe to answer."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(part)}]")
    return "".join(parts)


def _unsafe(found: str) -> str:
    if found == "\x00":
        return "a NUL character (U+0000), which text may not hold"
    return f"a lone surrogate (U+{ord(found):04X}), which is not a character: send valid Unicode"


def text_problem(data: Any) -> str | None:
    """The first string or key (in document order) with NUL or a lone surrogate, as a message naming
    its JSON path; None when all text is clean. Walks with a stack: no recursion, whatever the depth."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if found := _UNSAFE.search(value):
                return f"{json_path(path)} contains {_unsafe(found.group())}"
        elif isinstance(value, dict):
            for key in value:
                if found := _UNSAFE.search(key):
                    return f"the key {json_path((*path, key))} contains {_unsafe(found.group())}"
            stack.extend((item, (*path, key)) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in reversed(list(enumerate(value))))
    return None


def load_json(body: bytes, max_depth: int) -> Any:
    """Parse a request body as JSON within the limits: 400 for bad UTF-8, too deep or not JSON; 422
    for text no field may hold. The only place our request bodies are parsed before their model."""
    text = decoded(body)
    check_depth(text, max_depth)
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InputRejected(400, f"request body is not valid JSON: {exc}") from None
    except ValueError as exc:  # NaN/Infinity, or an integer longer than Python converts (4,300 digits)
        raise InputRejected(400, f"request body is not valid JSON: {exc}") from None
    if problem := text_problem(data):
        raise InputRejected(422, problem)
    return data


# Date and time parameters: ISO 8601 text, never a number ------------------------------------------

_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_datetime(value: object) -> object:
    """pydantic reads `0.5` or `1700000000` as seconds since 1970; the OpenAPI says ISO 8601, and so do we."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATETIME.match(value)):
        return value
    raise ValueError("expected an ISO 8601 date and time with a time zone, such as 2026-05-01T09:30:00Z")


def _iso_date(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("expected an ISO 8601 date, such as 2026-05-01")


IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]
"""An aware datetime given as ISO 8601 text (or a datetime in code)."""
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar date given as YYYY-MM-DD (or a date in code)."""


# The middleware ---------------------------------------------------------------------------------


def _content_kind(content_type: str | None) -> str | None:
    """ "json" (application/json, application/*+json: what FastAPI parses), "multipart", "form", "other", or None."""
    if not content_type:
        return None
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_type() == "multipart/form-data":
        return "multipart"
    if message.get_content_type() == "application/x-www-form-urlencoded":
        return "form"
    subtype = message.get_content_subtype()
    if message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
        return "json"
    return "other"


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, once; then the real channel (for http.disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _guarded(receive: Receive, limit: int, setting: str) -> Receive:
    """Passes the stream through, and refuses to go on once it has passed `limit`: the reader that
    crosses it gets that chunk (the image upload then answers in its own words), the next read is 413."""
    received = 0

    async def guarded() -> Message:
        nonlocal received
        if received > limit:
            raise too_large(limit, setting)
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
        return message

    return guarded


class BodyLimits:
    """ASGI middleware: every request body outside /webhooks within the limits before a route sees it.

    - NUL in the path: 404 (no resource has such a name); NUL in the query string: 422.
    - JSON bodies: read with the API cap (413), then `load_json` (400 / 422), then handed on unchanged.
    - multipart/form-data (the image upload): streamed through, guarded at the upload's own cap.
    - an HTML form (urlencoded) outside /api: a page's form (postmortem.web), within the API cap.
    - any other body: 415 when it is not empty (every /api route that reads a body reads JSON).
    """

    def __init__(self, app: ASGIApp, limits: LimitsSettings, upload_cap: int) -> None:
        self.app = app
        self.limits = limits
        self.upload_cap = upload_cap  # the image upload's whole multipart body (postmortem.api.images)
        self.api_setting = LimitsSettings.variable("api_max_bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            receive = await self._checked(scope, receive)
        except InputRejected as exc:
            await JSONResponse({"detail": exc.message}, status_code=exc.status_code)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        await self.app(scope, receive, send)

    async def _checked(self, scope: Scope, receive: Receive) -> Receive:
        if "\x00" in scope["path"]:
            raise InputRejected(404, "the path contains a NUL character (%00): no resource has such a name")
        query = scope.get("query_string", b"").decode("latin-1")
        if "%00" in query or "\x00" in query:
            for name, value in parse_qsl(query, keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    raise InputRejected(422, f"query parameter {json.dumps(name)} contains {_unsafe(chr(0))}")
        if scope["path"].startswith(WEBHOOKS):
            return receive  # each webhook reads its body with its own cap (postmortem.webhooks.payload)
        headers = Headers(scope=scope)
        kind = _content_kind(headers.get("content-type"))
        if kind == "multipart":
            return _guarded(receive, self.upload_cap, "the image upload's limit")
        body = await read_capped(
            _chunks(receive),
            self.limits.api_max_bytes,
            self.api_setting,
            declared_length(headers.get("content-length")),
        )
        if body and kind == "json":
            load_json(body, self.limits.json_max_depth)
        elif body and kind == "form" and not scope["path"].startswith("/api/"):
            pass  # a page's form (postmortem.web), read within the same cap
        elif body:
            sent = headers.get("content-type")
            raise InputRejected(
                415,
                f"request bodies are JSON: send Content-Type: application/json "
                f"({f'not {sent}' if sent else 'the body has no Content-Type'}; an image upload is multipart/form-data)",
            )
        return _replay(body, receive)
