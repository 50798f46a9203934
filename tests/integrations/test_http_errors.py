"""UpstreamError, retry hints and the request wrapper: what a caller needs to decide on a retry."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from postmortem.integrations.http_errors import (
    UpstreamError,
    path_segment,
    raise_for_upstream,
    request,
    retry_after_seconds,
)
from tests.fakes.pagerduty import FakePagerDuty, pagerduty_app
from tests.fakes.serve import loopback_client, serve_app
from tests.fixtures import fixture_json
from tests.support import free_port

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def answer(
    status: int,
    *,
    json=None,
    text: str | None = None,
    headers=None,
    url: str = "https://api.pagerduty.com/incidents/X/log_entries?limit=100&offset=0",
) -> httpx.Response:
    kwargs = {"json": json} if json is not None else {"text": text} if text is not None else {}
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", url), **kwargs)


def failure(response: httpx.Response, service: str = "PagerDuty") -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        raise_for_upstream(response, service)
    return caught.value


# retry_after_seconds ---------------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "20"})) == 20.0
    assert retry_after_seconds(httpx.Headers({"Retry-After": " 1.5 "})) == 1.5
    assert retry_after_seconds(httpx.Headers({"Retry-After": "0"})) == 0.0


def test_retry_after_as_http_date() -> None:
    later = NOW + timedelta(seconds=90)
    headers = httpx.Headers({"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    assert retry_after_seconds(headers, now=NOW) == 90.0
    assert retry_after_seconds(httpx.Headers({"Retry-After": "Wed, 01 May 2024 12:02:00 GMT"}), now=NOW) == 120.0


def test_retry_after_date_in_the_past_means_now() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "Wed, 01 May 2024 11:00:00 GMT"}), now=NOW) == 0.0


def test_pagerduty_ratelimit_reset_when_no_retry_after() -> None:
    headers = httpx.Headers({"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": "20"})
    assert retry_after_seconds(headers) == 20.0


def test_opsgenie_period_when_nothing_else() -> None:
    headers = httpx.Headers({"X-RateLimit-State": "THROTTLED", "X-RateLimit-Period-In-Sec": "60"})
    assert retry_after_seconds(headers) == 60.0


def test_retry_after_wins_over_the_rate_limit_headers() -> None:
    headers = httpx.Headers({"Retry-After": "3", "ratelimit-reset": "20", "X-RateLimit-Period-In-Sec": "60"})
    assert retry_after_seconds(headers) == 3.0
    assert retry_after_seconds(httpx.Headers({"ratelimit-reset": "20", "X-RateLimit-Period-In-Sec": "60"})) == 20.0


def test_unreadable_retry_after_falls_back_or_gives_none() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon", "ratelimit-reset": "5"})) == 5.0
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({"Retry-After": "-4"})) is None
    assert retry_after_seconds(httpx.Headers({"ratelimit-reset": "nan"})) is None
    assert retry_after_seconds(httpx.Headers({})) is None


# raise_for_upstream ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_success_passes(status: int) -> None:
    raise_for_upstream(answer(status), "PagerDuty")


def test_429_is_transient_with_the_hint() -> None:
    error = failure(
        answer(429, json={"error": {"message": "Rate Limit Exceeded", "code": 2020}}, headers={"ratelimit-reset": "20"})
    )
    assert (error.status, error.permanent, error.retry_after, error.code) == (429, False, 20.0, "2020")
    assert "Rate Limit Exceeded" in error.message


def test_429_without_headers_or_body_is_still_transient() -> None:
    error = failure(answer(429))
    assert (error.status, error.permanent, error.retry_after) == (429, False, None)
    assert str(error) == "PagerDuty answered 429 Too Many Requests (GET /incidents/X/log_entries)"


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_server_trouble_is_transient(status: int) -> None:
    error = failure(answer(status, text="upstream connect error"))
    assert error.permanent is False
    assert error.status == status
    assert "upstream connect error" in error.message


def test_503_retry_after_is_kept_but_rate_limit_windows_are_not() -> None:
    assert failure(answer(503, headers={"Retry-After": "30"})).retry_after == 30.0
    assert failure(answer(500, headers={"X-RateLimit-Period-In-Sec": "60"})).retry_after is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_client_errors_are_permanent(status: int) -> None:
    error = failure(answer(status, json={"error": {"message": "Nope", "code": 2001}}))
    assert error.permanent is True
    assert error.status == status
    assert error.retry_after is None


def test_one_line_message_with_the_upstream_text_and_no_query() -> None:
    error = failure(answer(401, json={"error": {"message": "Invalid token", "code": 2006}}))
    assert str(error) == "PagerDuty answered 401 Unauthorized: Invalid token, code 2006 (GET /incidents/X/log_entries)"
    assert error.service == "PagerDuty"
    assert error.code == "2006"
    assert "\n" not in str(error) and "limit=" not in str(error)


def test_pagerduty_error_details_are_included() -> None:
    body = {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Offset must be a number"]}}
    error = failure(answer(400, json=body))
    assert "Invalid Input Provided: Offset must be a number, code 2001" in error.message


def test_opsgenie_message_is_included() -> None:
    body = {"message": "Could not authenticate", "took": 0.0, "requestId": "b0a1"}
    error = failure(answer(401, json=body, url="https://api.opsgenie.com/v2/alerts/a1?identifierType=id"), "Opsgenie")
    assert str(error) == "Opsgenie answered 401 Unauthorized: Could not authenticate (GET /v2/alerts/a1)"


def test_slack_error_code_is_included() -> None:
    body = fixture_json("slack_chat_postMessage_response_error.json")
    error = failure(answer(400, json=body, url="https://slack.com/api/chat.postMessage"), "Slack")
    assert error.code == "too_many_attachments"
    assert "too_many_attachments" in str(error)


def test_jira_error_shape_is_included() -> None:
    body = fixture_json("jira_v3_create_issue_response_400.json")
    error = failure(answer(400, json=body, url="https://x.atlassian.net/rest/api/3/issue"), "Jira")
    assert error.permanent is True
    assert str(error) == "Jira answered 400 Bad Request: Field 'priority' is required (GET /rest/api/3/issue)"


# The body sabre/dav (Nextcloud, Baïkal) writes for an exception: lib/DAV/Server.php of sabre-io/dav.
SABRE_FORBIDDEN = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">\n'
    "  <s:sabredav-version>4.6.0</s:sabredav-version>\n"
    "  <s:exception>Sabre\\DAV\\Exception\\Forbidden</s:exception>\n"
    "  <s:message>Permission denied to create calendar object</s:message>\n"
    "</d:error>\n"
)


def test_webdav_error_bodies_give_the_servers_words() -> None:
    url = "https://cloud.example.com/remote.php/dav/calendars/alice/team/pm-1.ics"
    headers = {"Content-Type": "application/xml; charset=utf-8"}
    error = failure(answer(403, text=SABRE_FORBIDDEN, headers=headers, url=url), "CalDAV")
    assert error.permanent is True
    assert str(error) == (
        "CalDAV answered 403 Forbidden: Permission denied to create calendar object "
        "(GET /remote.php/dav/calendars/alice/team/pm-1.ics)"
    )
    # RFC 4791 §5.3.2: a precondition element, no prose
    precondition = '<D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><C:valid-calendar-data/></D:error>'
    error = failure(answer(403, text=precondition, headers=headers, url=url), "CalDAV")
    assert str(error).startswith("CalDAV answered 403 Forbidden: valid-calendar-data (")
    # XML that is not a DAV:error is passed on as text, as before
    error = failure(answer(400, text="<fault>bad</fault>", headers=headers, url=url), "CalDAV")
    assert "<fault>bad</fault>" in str(error)


def test_html_error_pages_are_not_pasted_into_the_message() -> None:
    error = failure(answer(502, text="<html><body>Bad gateway</body></html>", headers={"Content-Type": "text/html"}))
    assert str(error) == "PagerDuty answered 502 Bad Gateway (GET /incidents/X/log_entries)"


def test_long_bodies_are_shortened() -> None:
    error = failure(answer(500, text="x" * 5000))
    assert len(error.message) < 400


def test_error_survives_pickling() -> None:
    error = failure(
        answer(429, json={"error": {"message": "Rate Limit Exceeded", "code": 2020}}, headers={"Retry-After": "4"})
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.service, copy.status, copy.message, copy.retry_after, copy.permanent, copy.code) == (
        error.service,
        error.status,
        error.message,
        error.retry_after,
        error.permanent,
        error.code,
    )


def test_path_segment_escapes_and_refuses_path_tricks() -> None:
    assert path_segment("P 1/../x?y#z") == "P%201%2F..%2Fx%3Fy%23z"
    for bad in ("", ".", ".."):
        with pytest.raises(ValueError):
            path_segment(bad)


# request() over real sockets --------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def pd_server() -> AsyncIterator[tuple[FakePagerDuty, str]]:
    state = FakePagerDuty()
    async with serve_app(pagerduty_app(state)) as base:
        yield state, base


@pytest_asyncio.fixture
async def fake(pd_server: tuple[FakePagerDuty, str]) -> tuple[FakePagerDuty, str]:
    pd_server[0].reset()
    pd_server[0].add_incident("PQ1")
    return pd_server


async def test_request_returns_the_response_on_success(fake: tuple[FakePagerDuty, str]) -> None:
    state, base = fake
    async with loopback_client() as http:
        response = await request(
            http, "PagerDuty", "GET", f"{base}/incidents/PQ1", headers={"Authorization": f"Token token={state.token}"}
        )
    assert response.status_code == 200
    assert response.json()["incident"]["id"] == "PQ1"


async def test_timeout_is_transient_without_status(fake: tuple[FakePagerDuty, str]) -> None:
    state, base = fake
    state.delay_seconds = 0.3
    async with loopback_client(timeout=0.05) as http:
        with pytest.raises(UpstreamError) as caught:
            await request(
                http,
                "PagerDuty",
                "GET",
                f"{base}/incidents/PQ1",
                headers={"Authorization": f"Token token={state.token}"},
            )
    error = caught.value
    assert (error.status, error.permanent) == (None, False)
    assert str(error) == "PagerDuty did not answer in time: ReadTimeout (GET /incidents/PQ1)"
    assert isinstance(error.__cause__, httpx.TimeoutException)


async def test_connection_refused_is_transient_without_status() -> None:
    port = free_port()  # nothing listens there
    async with loopback_client(timeout=2) as http:
        with pytest.raises(UpstreamError) as caught:
            await request(http, "Opsgenie", "GET", f"http://127.0.0.1:{port}/v2/alerts/a")
    error = caught.value
    assert (error.status, error.permanent) == (None, False)
    assert error.message.startswith("Opsgenie could not be reached: ")
    assert error.message.endswith("(GET /v2/alerts/a)")


async def test_a_base_url_without_scheme_is_permanent() -> None:
    async with loopback_client(timeout=2) as http:
        with pytest.raises(UpstreamError) as caught:
            await request(http, "Slack", "GET", "slack.com/api/conversations.history")
    assert (caught.value.status, caught.value.permanent) == (None, True)


async def test_request_raises_for_error_statuses(fake: tuple[FakePagerDuty, str]) -> None:
    state, base = fake
    state.fail_next = [503]
    async with loopback_client() as http:
        with pytest.raises(UpstreamError) as caught:
            await request(
                http,
                "PagerDuty",
                "GET",
                f"{base}/incidents/PQ1",
                headers={"Authorization": f"Token token={state.token}"},
            )
    assert (caught.value.status, caught.value.permanent) == (503, False)
    assert "An internal error has occurred" in caught.value.message
