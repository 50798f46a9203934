"""PagerDutyClient against the loopback PagerDuty: headers, paging, the 10,000 cap and every failure kind."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from postmortem.integrations.http_errors import request
from postmortem.integrations.pagerduty_api import PagerDutyClient
from postmortem.integrations.pagination import Page
from tests.fakes.pagerduty import FakePagerDuty, make_log_entries, pagerduty_app
from tests.fakes.serve import loopback_client, serve_app
from tests.integrations.support import collect, failure

START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class PD:
    state: FakePagerDuty
    base: str
    http: httpx.AsyncClient

    def client(self, **kwargs: Any) -> PagerDutyClient:
        return PagerDutyClient(self.base, kwargs.pop("token", self.state.token), self.http, **kwargs)

    def list_requests(self, tail: str) -> list[dict[str, str]]:
        return [item.params for item in self.state.requests if item.path.endswith(tail)]


@pytest_asyncio.fixture(scope="module")
async def pd_server() -> AsyncIterator[tuple[FakePagerDuty, str]]:
    state = FakePagerDuty()
    async with serve_app(pagerduty_app(state)) as base:
        yield state, base


@pytest_asyncio.fixture
async def pd(pd_server: tuple[FakePagerDuty, str]) -> AsyncIterator[PD]:
    state, base = pd_server
    state.reset()
    async with loopback_client() as http:
        yield PD(state, base, http)


# shapes and headers -----------------------------------------------------------------------------


def test_generated_log_entries_tell_a_sensible_story() -> None:
    entries = make_log_entries("PABC", 10, START)
    kinds = [entry["type"] for entry in entries]
    assert kinds[0] == "trigger_log_entry" and kinds[-1] == "resolve_log_entry"
    assert set(kinds[1:-1]) == {"notify_log_entry", "acknowledge_log_entry", "annotate_log_entry", "escalate_log_entry"}
    assert len({entry["id"] for entry in make_log_entries("PABC", 10_000, START)}) == 10_000
    assert make_log_entries("PABC", 10, START) == entries  # deterministic
    assert entries[1]["created_at"] == "2024-05-01T09:00:30Z"
    assert all(entry["incident"]["id"] == "PABC" for entry in entries)


async def test_sends_token_and_v2_accept_on_every_call(pd: PD) -> None:
    pd.state.add_incident("PABC", log_entries=3, alerts=1, notes=1)
    client = pd.client()
    await client.get_incident("PABC")
    await client.log_entries_page("PABC", None)
    await client.alerts_page("PABC", None)
    await client.notes("PABC")
    assert len(pd.state.requests) == 4
    for item in pd.state.requests:
        assert item.headers["authorization"] == "Token token=pd-fake-token"
        assert item.headers["accept"] == "application/vnd.pagerduty+json;version=2"
        assert item.method == "GET"


async def test_get_incident_returns_the_raw_incident(pd: PD) -> None:
    fake = pd.state.add_incident("PABC", log_entries=4)
    incident = await pd.client().get_incident("PABC")
    assert incident == fake.incident
    assert incident["status"] == "resolved"
    assert incident["first_trigger_log_entry"]["type"] == "trigger_log_entry_reference"


async def test_log_entries_query(pd: PD) -> None:
    pd.state.add_incident("PABC", log_entries=3)
    await pd.client().log_entries_page("PABC", None)
    assert pd.list_requests("/log_entries") == [{"limit": "100", "offset": "0", "include[]": "channels"}]


async def test_notes_are_one_unpaged_list(pd: PD) -> None:
    fake = pd.state.add_incident("PABC", notes=3)
    assert await pd.client().notes("PABC") == fake.notes
    assert pd.list_requests("/notes") == [{}]


# paging -----------------------------------------------------------------------------------------


async def test_250_entries_come_once_each_in_order(pd: PD) -> None:
    fake = pd.state.add_incident("PABC", log_entries=250)
    client = pd.client()
    items, cursors = await collect(lambda cursor: client.log_entries_page("PABC", cursor))
    assert [item["id"] for item in items] == [entry["id"] for entry in reversed(fake.log_entries)]  # newest first
    assert items == list(reversed(fake.log_entries))
    assert cursors == ["100", "200", None]
    assert [params["offset"] for params in pd.list_requests("/log_entries")] == ["0", "100", "200"]


async def test_an_exact_multiple_stops_without_an_empty_request(pd: PD) -> None:
    pd.state.add_incident("PABC", log_entries=200)
    client = pd.client()
    items, cursors = await collect(lambda cursor: client.log_entries_page("PABC", cursor))
    assert len(items) == 200
    assert cursors == ["100", None]


async def test_small_pages(pd: PD) -> None:
    fake = pd.state.add_incident("PABC", log_entries=7)
    client = pd.client(page_size=3)
    items, cursors = await collect(lambda cursor: client.log_entries_page("PABC", cursor))
    assert items == list(reversed(fake.log_entries))
    assert cursors == ["3", "6", None]
    assert {params["limit"] for params in pd.list_requests("/log_entries")} == {"3"}


async def test_alerts_page_the_same_way(pd: PD) -> None:
    fake = pd.state.add_incident("PABC", alerts=5)
    client = pd.client(page_size=2)
    items, cursors = await collect(lambda cursor: client.alerts_page("PABC", cursor))
    assert items == fake.alerts
    assert cursors == ["2", "4", None]
    assert all("include[]" not in params for params in pd.list_requests("/alerts"))


async def test_an_empty_incident_is_one_empty_page(pd: PD) -> None:
    pd.state.add_incident("PABC")
    page = await pd.client().log_entries_page("PABC", None)
    assert page == Page(items=[], next_cursor=None)


async def test_ten_thousand_entries_are_all_retrievable(pd: PD) -> None:
    fake = pd.state.add_incident("PBIG", log_entries=10_000)
    client = pd.client()
    began = time.monotonic()
    items, cursors = await collect(lambda cursor: client.log_entries_page("PBIG", cursor))
    elapsed = time.monotonic() - began
    assert len(items) == 10_000
    assert len({item["id"] for item in items}) == 10_000
    assert items[0]["id"] == fake.log_entries[-1]["id"] and items[-1]["id"] == fake.log_entries[0]["id"]
    requests = pd.list_requests("/log_entries")
    assert len(requests) == 100
    assert requests[-1] == {"limit": "100", "offset": "9900", "include[]": "channels"}
    assert cursors[-1] is None
    assert elapsed < 5, f"paging 10,000 entries took {elapsed:.1f} s"


async def test_past_ten_thousand_the_client_stops_at_the_cap(pd: PD) -> None:
    pd.state.add_incident("PBIG", log_entries=make_log_entries("PBIG", 10_050, START))
    client = pd.client()
    items, cursors = await collect(lambda cursor: client.log_entries_page("PBIG", cursor))
    assert len(items) == 10_000
    assert cursors[-2:] == ["10000", None]  # the fake said "more"; the cap ends it without a request
    requests = pd.list_requests("/log_entries")
    assert len(requests) == 100
    assert max(int(params["offset"]) + int(params["limit"]) for params in requests) == 10_000


async def test_a_page_that_would_cross_the_cap_asks_for_less(pd: PD) -> None:
    pd.state.add_incident("PBIG", log_entries=make_log_entries("PBIG", 10_050, START))
    client = pd.client(page_size=30)
    page = await client.log_entries_page("PBIG", "9990")
    assert len(page.items) == 10
    assert page.next_cursor == "10000"
    assert pd.list_requests("/log_entries") == [{"limit": "10", "offset": "9990", "include[]": "channels"}]
    assert await client.log_entries_page("PBIG", "10000") == Page(items=[], next_cursor=None)
    assert await client.log_entries_page("PBIG", "12000") == Page(items=[], next_cursor=None)
    assert len(pd.state.requests) == 1


async def test_the_fake_refuses_what_pagerduty_refuses(pd: PD) -> None:
    """Why the guard exists: offset + limit past 10,000 is a permanent 400."""
    pd.state.add_incident("PBIG", log_entries=5)
    error = await failure(
        request(
            pd.http,
            "PagerDuty",
            "GET",
            f"{pd.base}/incidents/PBIG/log_entries",
            params={"limit": "100", "offset": "9950"},
            headers={"Authorization": "Token token=pd-fake-token"},
        )
    )
    assert (error.status, error.permanent, error.code) == (400, True, "2001")


async def test_a_cursor_can_be_retried_after_a_failure(pd: PD) -> None:
    fake = pd.state.add_incident("PABC", log_entries=250)
    pd.state.fail_after_offset = 100
    client = pd.client()
    first = await client.log_entries_page("PABC", None)
    error = await failure(client.log_entries_page("PABC", first.next_cursor))
    assert (error.status, error.permanent) == (500, False)
    pd.state.fail_after_offset = None
    items, _ = await collect(lambda cursor: client.log_entries_page("PABC", cursor or first.next_cursor))
    assert first.items + items == list(reversed(fake.log_entries))


async def test_bad_cursors_and_ids_are_refused_without_a_request(pd: PD) -> None:
    client = pd.client()
    for cursor in ("abc", "-100"):
        with pytest.raises(ValueError):
            await client.log_entries_page("PABC", cursor)
    for incident_id in ("", ".", ".."):
        with pytest.raises(ValueError):
            await client.get_incident(incident_id)
    with pytest.raises(ValueError):
        pd.client(page_size=101)
    assert pd.state.requests == []


async def test_ids_are_escaped_into_one_path_segment(pd: PD) -> None:
    fake = pd.state.add_incident("P 1?x#y", log_entries=2)
    client = pd.client()
    assert (await client.get_incident("P 1?x#y"))["id"] == "P 1?x#y"
    error = await failure(client.notes("../../users"))
    assert error.permanent is True
    assert [item.raw_path for item in pd.state.requests] == [
        "/incidents/P%201%3Fx%23y",
        "/incidents/..%2F..%2Fusers/notes",
    ]
    assert fake.incident["id"] == "P 1?x#y"


async def test_a_trailing_slash_in_the_base_url_is_fine(pd: PD) -> None:
    pd.state.add_incident("PABC")
    client = PagerDutyClient(pd.base + "/", pd.state.token, pd.http)
    await client.get_incident("PABC")
    assert pd.state.requests[0].raw_path == "/incidents/PABC"


# failures ---------------------------------------------------------------------------------------


async def test_429_with_ratelimit_reset(pd: PD) -> None:
    pd.state.add_incident("PABC", log_entries=3)
    pd.state.fail_next = [429]
    error = await failure(pd.client().log_entries_page("PABC", None))
    assert (error.status, error.permanent, error.retry_after, error.code) == (429, False, 20.0, "2020")
    assert "Rate Limit Exceeded" in str(error)
    # the limit has passed: the same call now works
    assert len((await pd.client().log_entries_page("PABC", None)).items) == 3


async def test_429_with_retry_after_prefers_it(pd: PD) -> None:
    pd.state.add_incident("PABC")
    pd.state.fail_next = [429]
    pd.state.retry_after = "7"
    error = await failure(pd.client().get_incident("PABC"))
    assert (error.permanent, error.retry_after) == (False, 7.0)


async def test_bare_429_is_transient_without_a_hint(pd: PD) -> None:
    pd.state.add_incident("PABC")
    pd.state.fail_next = [429]
    pd.state.rate_limit_headers = False
    error = await failure(pd.client().get_incident("PABC"))
    assert (error.status, error.permanent, error.retry_after) == (429, False, None)


async def test_500_then_success(pd: PD) -> None:
    pd.state.add_incident("PABC", alerts=2)
    pd.state.fail_next = [500, 502]
    client = pd.client()
    first = await failure(client.alerts_page("PABC", None))
    second = await failure(client.alerts_page("PABC", None))
    assert (first.status, first.permanent, second.status, second.permanent) == (500, False, 502, False)
    assert "An internal error has occurred" in first.message
    assert len((await client.alerts_page("PABC", None)).items) == 2


async def test_slow_answer_is_a_transient_timeout(pd: PD) -> None:
    pd.state.add_incident("PABC")
    pd.state.delay_seconds = 0.3
    async with loopback_client(timeout=0.05) as impatient:
        client = PagerDutyClient(pd.base, pd.state.token, impatient)
        error = await failure(client.get_incident("PABC"))
    assert (error.status, error.permanent) == (None, False)
    assert "did not answer in time" in str(error)


async def test_wrong_token_is_permanent_with_pagerdutys_message(pd: PD) -> None:
    pd.state.add_incident("PABC")
    error = await failure(pd.client(token="revoked").log_entries_page("PABC", None))
    assert (error.status, error.permanent, error.code) == (401, True, "2006")
    assert str(error) == (
        "PagerDuty answered 401 Unauthorized: Authentication failed, code 2006 (GET /incidents/PABC/log_entries)"
    )


async def test_unknown_incident_is_permanent_not_found(pd: PD) -> None:
    error = await failure(pd.client().get_incident("PNOPE"))
    assert (error.status, error.permanent, error.code) == (404, True, "2100")
    assert str(error) == "PagerDuty answered 404 Not Found: Not Found, code 2100 (GET /incidents/PNOPE)"


# outages: fail_with(...) until heal(), as end-to-end tests break PagerDuty -----------------------


async def test_a_revoked_key_is_permanent_on_every_gather_call_in_pagerdutys_words_then_heals(pd: PD) -> None:
    pd.state.add_incident("PABC", log_entries=3, alerts=1, notes=1)
    client = pd.client()
    pd.state.fail_with(401)  # the configured token, refused: revoked or rotated
    gather_calls = (
        ("/incidents/PABC", client.get_incident("PABC")),
        ("/incidents/PABC/log_entries", client.log_entries_page("PABC", None)),
        ("/incidents/PABC/alerts", client.alerts_page("PABC", None)),
        ("/incidents/PABC/notes", client.notes("PABC")),
    )
    for path, call in gather_calls:
        error = await failure(call)
        assert (error.service, error.status, error.permanent, error.code) == ("PagerDuty", 401, True, "2006")
        assert str(error) == f"PagerDuty answered 401 Unauthorized: Authentication failed, code 2006 (GET {path})"
    assert pd.state.refused == 4

    pd.state.heal()
    assert (await client.get_incident("PABC"))["id"] == "PABC"
    entries, _ = await collect(lambda cursor: client.log_entries_page("PABC", cursor))
    assert len(entries) == 3
    assert len(await client.notes("PABC")) == 1


async def test_an_outage_under_one_path_leaves_the_rest_answering(pd: PD) -> None:
    pd.state.add_incident("PABC", log_entries=2)
    pd.state.fail_with(500, path="/incidents/PABC/log_entries")
    error = await failure(pd.client().log_entries_page("PABC", None))
    assert (error.status, error.permanent) == (500, False)
    assert (await pd.client().get_incident("PABC"))["id"] == "PABC"
