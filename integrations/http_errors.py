"""One error for every outside system: who answered what, whether trying again can help, and when.

The integrations speak httpx and nothing else; callers (activities) decide what a retry means for
them from `permanent` and `retry_after`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

# Statuses worth trying again: the upstream is busy, broken for a moment or too slow.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_DETAIL = 300
_MAX_XML = 65_536  # a WebDAV error body is a few hundred bytes; bigger XML is not one
_SABRE = "{http://sabredav.org/ns}"


class UpstreamError(Exception):
    """An outside system failed a request, or could not be reached at all (then `status` is None)."""

    def __init__(
        self,
        service: str,
        status: int | None,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.permanent = permanent
        self.code = code  # the upstream's own error code when it sends one ("2006", "channel_not_found")

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (self.service, self.status, self.message, self.retry_after, self.permanent, self.code))

    def __repr__(self) -> str:
        return (
            f"UpstreamError(service={self.service!r}, status={self.status!r}, permanent={self.permanent!r}, "
            f"retry_after={self.retry_after!r}, message={self.message!r})"
        )


def _rebuild(
    service: str, status: int | None, message: str, retry_after: float | None, permanent: bool, code: str | None
) -> UpstreamError:
    return UpstreamError(service, status, message, retry_after=retry_after, permanent=permanent, code=code)


def path_segment(value: str) -> str:
    """`value` escaped as one URL path segment; refuses values that would change the path's meaning."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise ValueError(f"not a usable identifier: {value!r}")
    return quote(value, safe="")


def retry_after_seconds(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """How long the upstream asks us to wait, in seconds, or None when it does not say.

    `Retry-After` (seconds or an HTTP-date, RFC 9110), else PagerDuty's `ratelimit-reset` (seconds),
    else Opsgenie's `X-RateLimit-Period-In-Sec`.
    """
    value = headers.get("retry-after")
    if value is not None:
        parsed = _seconds(value)
        if parsed is None:
            parsed = _http_date_seconds(value, now)
        if parsed is not None:
            return parsed
    for name in ("ratelimit-reset", "x-ratelimit-period-in-sec"):
        value = headers.get(name)
        if value is not None:
            parsed = _seconds(value)
            if parsed is not None:
                return parsed
    return None


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, infinite
        return None
    return seconds


def _http_date_seconds(value: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _where(request: httpx.Request | None) -> str:
    if request is None:
        return ""
    return f" ({request.method} {request.url.raw_path.decode('ascii', 'replace').split('?', 1)[0]})"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def upstream_detail(body: Any) -> tuple[str | None, str | None]:
    """The upstream's own error text and code from a decoded body, in each known shape."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):  # PagerDuty {"error": {"message", "code", "errors": [...]}}
        message = error.get("message")
        code = error.get("code")
        listed = error.get("errors")
        details = [str(item) for item in listed if item] if isinstance(listed, list) else []
        parts = [str(message)] if message else []
        if details:
            parts.append("; ".join(details))
        text = ": ".join(parts) or None
        if text and code is not None:
            text = f"{text}, code {code}"
        return text, (str(code) if code is not None else None)
    if isinstance(error, str) and error:  # Slack {"ok": false, "error": "channel_not_found"}
        needed = body.get("needed")
        return (f"{error} (needs {needed})" if needed else error), error
    message = body.get("message")
    if isinstance(message, str) and message:  # Opsgenie {"message", "took", "requestId"}
        code = body.get("code")
        return message, (str(code) if code is not None else None)
    messages = body.get("errorMessages")  # Jira {"errorMessages": [...], "errors": {field: msg}}
    field_errors = body.get("errors")
    found: list[str] = []
    if isinstance(messages, list):
        found += [str(item) for item in messages if item]
    if isinstance(field_errors, dict):
        found += [f"{key}: {value}" for key, value in field_errors.items()]
    elif isinstance(field_errors, list):  # GraphQL {"errors": [{"message"}]}; JSM Ops {"errors": [{"title", "code"}]}
        for item in field_errors:
            words = item.get("message") or item.get("title") if isinstance(item, dict) else None
            if words:
                found.append(str(words))
    return ("; ".join(found) or None), None


def dav_error_detail(content: bytes) -> str | None:
    """The words of a WebDAV `<D:error>` body (RFC 4918 §8.7), or None when `content` is not one.

    sabre/dav (Nextcloud, Baïkal, ...) puts its own message in `<s:message>` (lib/DAV/Server.php);
    other servers name the failed precondition as an element (RFC 4918 §16, RFC 4791 §1.3:
    `<C:valid-calendar-data/>`, `<D:need-privileges/>`), which are then the words.
    """
    if len(content) > _MAX_XML:
        return None
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return None
    if root.tag != "{DAV:}error":
        return None
    message = (root.findtext(f"{_SABRE}message") or "").strip()
    if message:
        return message
    conditions = [child.tag.rsplit("}", 1)[-1] for child in root if not str(child.tag).startswith(_SABRE)]
    if conditions:
        return ", ".join(conditions)
    return (root.findtext(f"{_SABRE}exception") or "").strip() or None


def _response_detail(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return None, None
    if not content:
        return None, None
    try:
        return upstream_detail(json.loads(content))
    except (ValueError, UnicodeDecodeError):
        pass
    if "html" in response.headers.get("content-type", "").lower():
        return None, None
    if content.lstrip().startswith(b"<"):
        dav = dav_error_detail(content)
        if dav is not None:
            return _shorten(dav), None
    text = content.decode("utf-8", "replace").strip()
    return (_shorten(text) if text else None), None


def error_from_response(response: httpx.Response, service: str) -> UpstreamError:
    """The UpstreamError that a non-2xx response stands for."""
    status = response.status_code
    detail, code = _response_detail(response)
    head = f"{service} answered {status} {response.reason_phrase or ''}".rstrip()
    message = f"{head}: {_shorten(detail)}" if detail else head
    permanent = status not in TRANSIENT_STATUSES and status < 500
    if status == 429:
        retry_after = retry_after_seconds(response.headers)
    elif not permanent and "retry-after" in response.headers:
        # a 503 may say when to come back; the rate-limit window headers only mean something on a 429
        retry_after = retry_after_seconds(httpx.Headers({"retry-after": response.headers["retry-after"]}))
    else:
        retry_after = None
    return UpstreamError(
        service,
        status,
        message + _where(response.request if _has_request(response) else None),
        retry_after=retry_after,
        permanent=permanent,
        code=code,
    )


def _has_request(response: httpx.Response) -> bool:
    try:
        _ = response.request
    except RuntimeError:
        return False
    return True


def raise_for_upstream(response: httpx.Response, service: str) -> None:
    """Nothing for 2xx; otherwise an UpstreamError: 408/429/5xx may pass, other statuses will not."""
    if 200 <= response.status_code < 300:
        return
    raise error_from_response(response, service)


def json_object(response: httpx.Response, service: str) -> dict[str, Any]:
    """The body of a 2xx answer as a JSON object; a body that is not one is a (transient) upstream fault."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise UpstreamError(
            service,
            response.status_code,
            f"{service} answered {response.status_code} with a body that is not a JSON object"
            + _where(response.request if _has_request(response) else None),
            permanent=False,
        )
    return body


def expect_key(body: dict[str, Any], key: str, kind: type, response: httpx.Response, service: str) -> Any:
    """body[key] when it is a `kind`; otherwise the upstream broke its contract (permanent: retrying won't fix it)."""
    value = body.get(key)
    if not isinstance(value, kind):
        raise UpstreamError(
            service,
            response.status_code,
            f"{service} answered {response.status_code} without the expected {key!r} {kind.__name__}"
            + _where(response.request if _has_request(response) else None),
            permanent=True,
        )
    return value


async def request(client: httpx.AsyncClient, service: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """client.request with every failure turned into an UpstreamError (transport failures are transient)."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise UpstreamError(
            service,
            None,
            f"{service} did not answer in time: {type(exc).__name__}{_where(_request_of(exc))}",
            permanent=False,
        ) from exc
    except httpx.UnsupportedProtocol as exc:  # a base URL without http(s):// — configuration, not weather
        raise UpstreamError(service, None, f"{service} cannot be called at {url!r}: {exc}", permanent=True) from exc
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise UpstreamError(
            service,
            None,
            f"{service} could not be reached: {_shorten(reason)}{_where(_request_of(exc))}",
            permanent=False,
        ) from exc
    raise_for_upstream(response, service)
    return response


def _request_of(exc: httpx.RequestError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:
        return None
