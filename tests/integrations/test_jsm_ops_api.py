"""JsmOpsClient against the loopback JSM Operations API: basic auth, `links.next` paging, the upstream's words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from postmortem.evidence.models import EntryKind, EvidenceSource
from postmortem.evidence.timeline import from_jsm_log, from_jsm_note
from postmortem.integrations.jsm_ops_api import JsmOpsClient, paging_of
from tests.fakes.jsm import FakeJsm, jsm_app
from tests.fakes.serve import loopback_client, serve_app
from tests.fixtures import fixture_json
from tests.integrations.support import collect, failure

ALERT = "9b251e07-73c9-4907-9996-8cb53a6a20d0-1704440650350"


@dataclass
class JSM:
    state: FakeJsm
    base: str
    http: httpx.AsyncClient

    def client(self, **kwargs: Any) -> JsmOpsClient:
        s = self.state
        return JsmOpsClient(
            self.base,
            kwargs.pop("cloud_id", s.cloud_id),
            kwargs.pop("email", s.email),
            kwargs.pop("api_token", s.api_token),
            self.http,
            **kwargs,
        )


@pytest_asyncio.fixture(scope="module")
async def jsm_server() -> AsyncIterator[tuple[FakeJsm, str]]:
    state = FakeJsm()
    async with serve_app(jsm_app(state)) as base:
        yield state, base


@pytest_asyncio.fixture
async def jsm(jsm_server: tuple[FakeJsm, str]) -> AsyncIterator[JSM]:
    state, base = jsm_server
    state.reset()
    async with loopback_client() as http:
        yield JSM(state, base, http)


def test_the_fixtures_read_as_timeline_entries() -> None:
    log = fixture_json("jsm_ops_list_alert_logs_response.json")["values"][0]
    note = fixture_json("jsm_ops_list_alert_notes_response.json")["values"][0]
    entry = from_jsm_log(log, ALERT)
    assert entry is not None and entry.source == EvidenceSource.JSM
    assert entry.at.isoformat() == "2024-01-05T07:06:47.958000+00:00"
    assert entry.kind == EntryKind.REASSIGNED  # "Assigning owner team [Dream] to alert …"
    assert entry.actor == "system"
    noted = from_jsm_note(note, ALERT)
    assert noted is not None and noted.key == f"jsm:note:{ALERT}:1704869443312000050"
    assert (noted.kind, noted.actor) == (EntryKind.NOTE, "user@atlassian.com")
    assert from_jsm_log({"log": "no time"}, ALERT) is None


def test_paging_of_takes_only_the_position_from_a_next_link() -> None:
    assert paging_of("/v1/alerts/x/logs?after=1492000072838_1492000072838234593") == (
        "after=1492000072838_1492000072838234593"
    )
    assert paging_of("/v1/alerts?offset=10&size=5") == "offset=10&size=5"
    assert paging_of("https://evil.example/steal?after=1&token=x") == "after=1"  # the host is never used
    assert paging_of("/v1/alerts/x/logs?size=5") is None  # no position: no way forward
    assert paging_of(None) is None and paging_of("") is None


async def test_get_alert_sends_basic_auth_to_the_cloud_path(jsm: JSM) -> None:
    fake = jsm.state.add_alert(ALERT)
    alert = await jsm.client().get_alert(ALERT)
    assert alert == fake.alert and alert["status"] == "closed"
    (sent,) = jsm.state.requests
    assert sent.raw_path == f"/jsm/ops/api/{jsm.state.cloud_id}/v1/alerts/{ALERT}"
    assert sent.headers["authorization"] == jsm.state.authorization
    assert sent.headers["authorization"].startswith("Basic ")


async def test_logs_and_notes_follow_links_next_until_the_end(jsm: JSM) -> None:
    fake = jsm.state.add_alert(ALERT, logs=250, notes=3)
    client = jsm.client()
    logs, cursors = await collect(lambda cursor: client.logs_page(ALERT, cursor))
    assert [log["logTime"] for log in logs] == [log["logTime"] for log in fake.logs]
    assert "_key" not in logs[0] and set(logs[0]) == {"logTime", "logType", "log", "owner"}
    assert len(cursors) == 3 and cursors[-1] is None
    sent = [r.params for r in jsm.state.served(ALERT, "/logs")]
    assert sent[0] == {"size": "100"}
    assert sent[1] == {"after": fake.logs[99]["_key"], "size": "100"}
    assert sent[2] == {"after": fake.logs[199]["_key"], "size": "100"}
    notes, note_cursors = await collect(lambda cursor: client.notes_page(ALERT, cursor))
    assert [n["note"] for n in notes] == [n["note"] for n in fake.notes] and note_cursors == [None]


async def test_a_short_page_with_a_next_link_is_followed(jsm: JSM) -> None:
    jsm.state.max_size = 7  # the API serves fewer than asked: only links.next says there is more
    jsm.state.add_alert(ALERT, logs=20)
    client = jsm.client(page_size=50)
    logs, cursors = await collect(lambda cursor: client.logs_page(ALERT, cursor))
    assert len(logs) == 20 and len(cursors) == 3


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "Client must be authenticated to access this resource."),
        (403, "You are not allowed to view this alert."),
        (404, "Alert not found."),
    ],
)
async def test_permanent_errors_carry_the_upstream_words(jsm: JSM, status: int, words: str) -> None:
    jsm.state.add_alert(ALERT, logs=3)
    jsm.state.fail_with(status)
    error = await failure(jsm.client().logs_page(ALERT, None))
    assert error.permanent and error.status == status
    assert error.service == "JSM Operations"
    assert str(error).startswith(f"JSM Operations answered {status}") and words in str(error)
    jsm.state.heal()
    assert len((await jsm.client().logs_page(ALERT, None)).items) == 3


async def test_wrong_credentials_and_unknown_alerts_are_permanent(jsm: JSM) -> None:
    jsm.state.add_alert(ALERT)
    wrong = await failure(jsm.client(api_token="revoked").get_alert(ALERT))
    assert (wrong.status, wrong.permanent) == (401, True)
    unknown = await failure(jsm.client().notes_page("no-such-alert", None))
    assert (unknown.status, unknown.permanent) == (404, True) and "Alert not found." in str(unknown)
    other_site = await failure(jsm.client(cloud_id="another-site").get_alert(ALERT))
    assert other_site.status == 404


async def test_transient_errors_may_be_retried(jsm: JSM) -> None:
    jsm.state.add_alert(ALERT, logs=1)
    jsm.state.fail_next = [429, 503]
    throttled = await failure(jsm.client().logs_page(ALERT, None))
    assert (throttled.status, throttled.permanent, throttled.retry_after) == (429, False, 1.0)
    broken = await failure(jsm.client().logs_page(ALERT, None))
    assert (broken.status, broken.permanent) == (503, False)
    assert len((await jsm.client().logs_page(ALERT, None)).items) == 1


async def test_ids_are_path_segments_not_paths(jsm: JSM) -> None:
    with pytest.raises(ValueError):
        JsmOpsClient(jsm.base, "..", "e", "t", jsm.http)
    jsm.state.add_alert(ALERT)
    error = await failure(jsm.client().get_alert("../../v1/alerts"))
    assert error.status == 404
    assert jsm.state.requests[-1].raw_path.endswith("/alerts/..%2F..%2Fv1%2Falerts")
