"""OpsgenieClient against the loopback Opsgenie: GenieKey, offset-string paging and every failure kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from postmortem.integrations.opsgenie_api import OpsgenieClient
from postmortem.integrations.pagination import Page
from tests.fakes.opsgenie import FakeOpsgenie, make_logs, opsgenie_app
from tests.fakes.serve import loopback_client, serve_app
from tests.fixtures import fixture_json
from tests.integrations.support import collect, failure

ALERT = "70413a06-38d6-4c85-92b8-5ebc900d42e2"


@dataclass
class OG:
    state: FakeOpsgenie
    base: str
    http: httpx.AsyncClient

    def client(self, **kwargs: Any) -> OpsgenieClient:
        return OpsgenieClient(self.base, kwargs.pop("api_key", self.state.api_key), self.http, **kwargs)

    def params(self, tail: str) -> list[dict[str, str]]:
        return [item.params for item in self.state.requests if item.path.endswith(tail)]


@pytest_asyncio.fixture(scope="module")
async def og_server() -> AsyncIterator[tuple[FakeOpsgenie, str]]:
    state = FakeOpsgenie()
    async with serve_app(opsgenie_app(state)) as base:
        yield state, base


@pytest_asyncio.fixture
async def og(og_server: tuple[FakeOpsgenie, str]) -> AsyncIterator[OG]:
    state, base = og_server
    state.reset()
    async with loopback_client() as http:
        yield OG(state, base, http)


def test_generated_logs_look_like_the_fixture() -> None:
    sample = fixture_json("opsgenie_api_list_alert_logs_response.json")["data"][0]
    logs = make_logs(5, datetime(2017, 4, 12, 12, 27, 52, 838000, tzinfo=UTC))
    assert set(logs[0]) == set(sample)
    assert logs[0]["createdAt"] == "2017-04-12T12:27:52.838Z"
    assert logs[0]["offset"].split("_")[0] == sample["offset"].split("_")[0]  # same epoch-ms prefix
    assert len(logs[0]["offset"]) == len(sample["offset"])
    assert [log["offset"] for log in logs] == sorted(log["offset"] for log in logs)
    assert logs[0]["log"].startswith("Alert created") and logs[-1]["log"].startswith("Alert closed")


async def test_get_alert_sends_the_genie_key_and_returns_data(og: OG) -> None:
    fake = og.state.add_alert(ALERT)
    alert = await og.client().get_alert(ALERT)
    assert alert == fake.alert
    assert alert["tinyId"] and alert["priority"] == "P4"
    (sent,) = og.state.requests
    assert sent.headers["authorization"] == "GenieKey og-fake-key"
    assert sent.raw_path == f"/v2/alerts/{ALERT}"
    assert sent.params == {"identifierType": "id"}


async def test_250_logs_come_once_each_oldest_first(og: OG) -> None:
    fake = og.state.add_alert(ALERT, logs=250)
    client = og.client()
    items, cursors = await collect(lambda cursor: client.logs_page(ALERT, cursor))
    assert items == fake.logs
    assert cursors == [fake.logs[99]["offset"], fake.logs[199]["offset"], None]
    sent = og.params("/logs")
    assert sent[0] == {"identifierType": "id", "limit": "100", "order": "asc", "direction": "next"}
    assert [params.get("offset") for params in sent] == [None, fake.logs[99]["offset"], fake.logs[199]["offset"]]


async def test_full_pages_continue_even_without_a_next_link(og: OG) -> None:
    fake = og.state.add_alert(ALERT, logs=250)
    og.state.next_link = False
    client = og.client()
    items, _ = await collect(lambda cursor: client.logs_page(ALERT, cursor))
    assert items == fake.logs
    assert len(og.params("/logs")) == 3


async def test_an_exact_multiple_ends_on_an_empty_page(og: OG) -> None:
    fake = og.state.add_alert(ALERT, logs=200)
    client = og.client()
    items, cursors = await collect(lambda cursor: client.logs_page(ALERT, cursor))
    assert items == fake.logs
    assert cursors == [fake.logs[99]["offset"], fake.logs[199]["offset"], None]
    assert len(og.params("/logs")) == 3


async def test_short_pages_with_a_next_link_continue(og: OG) -> None:
    fake = og.state.add_alert(ALERT, logs=130)
    og.state.max_limit = 40  # the server gives less than the 100 asked for, and says there is more
    client = og.client()
    items, cursors = await collect(lambda cursor: client.logs_page(ALERT, cursor))
    assert items == fake.logs
    assert cursors == [fake.logs[39]["offset"], fake.logs[79]["offset"], fake.logs[119]["offset"], None]


async def test_notes_page_the_same_way(og: OG) -> None:
    fake = og.state.add_alert(ALERT, notes=5)
    client = og.client(page_size=2)
    items, cursors = await collect(lambda cursor: client.notes_page(ALERT, cursor))
    assert items == fake.notes
    assert cursors == [fake.notes[1]["offset"], fake.notes[3]["offset"], None]
    assert {params["limit"] for params in og.params("/notes")} == {"2"}


async def test_no_logs_is_one_empty_page(og: OG) -> None:
    og.state.add_alert(ALERT)
    assert await og.client().logs_page(ALERT, None) == Page(items=[], next_cursor=None)


async def test_ids_are_escaped(og: OG) -> None:
    og.state.add_alert("a b?c")
    assert (await og.client().get_alert("a b?c"))["id"] == "a b?c"
    assert og.state.requests[0].raw_path == "/v2/alerts/a%20b%3Fc"
    with pytest.raises(ValueError):
        await og.client().get_alert("..")


async def test_429_with_the_period_header(og: OG) -> None:
    og.state.add_alert(ALERT, logs=3)
    og.state.fail_next = [429]
    error = await failure(og.client().logs_page(ALERT, None))
    assert (error.status, error.permanent, error.retry_after) == (429, False, 60.0)
    assert (await og.client().logs_page(ALERT, None)).items  # then it works


async def test_429_with_retry_after_prefers_it(og: OG) -> None:
    og.state.add_alert(ALERT)
    og.state.fail_next = [429]
    og.state.retry_after = "2"
    error = await failure(og.client().get_alert(ALERT))
    assert (error.permanent, error.retry_after) == (False, 2.0)


async def test_429_without_hints(og: OG) -> None:
    og.state.add_alert(ALERT)
    og.state.fail_next = [429]
    og.state.rate_limit_period = None
    error = await failure(og.client().get_alert(ALERT))
    assert (error.status, error.permanent, error.retry_after) == (429, False, None)


async def test_500_is_transient(og: OG) -> None:
    og.state.add_alert(ALERT)
    og.state.fail_next = [500]
    error = await failure(og.client().notes_page(ALERT, None))
    assert (error.status, error.permanent) == (500, False)


async def test_slow_answer_is_a_transient_timeout(og: OG) -> None:
    og.state.add_alert(ALERT)
    og.state.delay_seconds = 0.3
    async with loopback_client(timeout=0.05) as impatient:
        error = await failure(OpsgenieClient(og.base, og.state.api_key, impatient).get_alert(ALERT))
    assert (error.status, error.permanent) == (None, False)


async def test_wrong_key_is_permanent_with_opsgenies_message(og: OG) -> None:
    og.state.add_alert(ALERT)
    error = await failure(og.client(api_key="wrong").logs_page(ALERT, None))
    assert (error.status, error.permanent) == (401, True)
    assert str(error) == f"Opsgenie answered 401 Unauthorized: Could not authenticate (GET /v2/alerts/{ALERT}/logs)"


async def test_unknown_alert_is_permanent(og: OG) -> None:
    error = await failure(og.client().get_alert("missing"))
    assert (error.status, error.permanent) == (404, True)
    assert "Alert does not exist" in str(error)


async def test_a_revoked_key_outage_is_permanent_then_heals(og: OG) -> None:
    og.state.add_alert(ALERT, logs=2)
    og.state.fail_with(401)
    error = await failure(og.client().logs_page(ALERT, None))
    assert (error.status, error.permanent) == (401, True)
    assert str(error) == f"Opsgenie answered 401 Unauthorized: Could not authenticate (GET /v2/alerts/{ALERT}/logs)"
    og.state.heal()
    assert len((await og.client().logs_page(ALERT, None)).items) == 2
