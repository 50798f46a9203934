"""SlackClient against the loopback Slack: `ok` before status, cursor paging, rate limits both ways."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.pagination import Page
from postmortem.integrations.slack_api import SlackClient
from tests.fakes.serve import loopback_client, serve_app
from tests.fakes.slack import FakeSlack, make_messages, slack_app
from tests.fixtures import fixture_json

CHANNEL = "C1H9RESGL"
START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class SL:
    state: FakeSlack
    base: str
    http: httpx.AsyncClient

    def client(self, token: str | None = None) -> SlackClient:
        return SlackClient(self.base, token or self.state.token, self.http)


@pytest_asyncio.fixture(scope="module")
async def slack_server() -> AsyncIterator[tuple[FakeSlack, str]]:
    state = FakeSlack()
    async with serve_app(slack_app(state)) as base:
        yield state, f"{base}/api"


@pytest_asyncio.fixture
async def slack(slack_server: tuple[FakeSlack, str]) -> AsyncIterator[SL]:
    state, base = slack_server
    state.reset()
    async with loopback_client() as http:
        yield SL(state, base, http)


async def history(client: SlackClient, limit: int = 200, **window: float | None) -> tuple[list[dict], list[str | None]]:
    items: list[dict] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while True:
        page = await client.conversations_history_page(
            CHANNEL, cursor, window.get("oldest"), window.get("latest"), limit=limit
        )
        items += page.items
        cursors.append(page.next_cursor)
        if page.next_cursor is None:
            return items, cursors
        cursor = page.next_cursor


async def failure(call: Any) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await call
    return caught.value


# conversations.history --------------------------------------------------------------------------


async def test_history_pages_through_everything_newest_first(slack: SL) -> None:
    messages = make_messages(450, START)
    slack.state.channels[CHANNEL] = list(messages)
    items, cursors = await history(slack.client())
    assert items == list(reversed(messages))
    assert len(cursors) == 3 and cursors[-1] is None and all(cursors[:2])
    sent = [item for item in slack.state.requests if item.path == "/api/conversations.history"]
    assert [item.params.get("cursor") for item in sent] == [None, cursors[0], cursors[1]]
    assert all(item.headers["authorization"] == "Bearer xoxb-fake-token" for item in sent)
    assert all(item.method == "GET" and item.params["limit"] == "200" for item in sent)
    assert "token" not in sent[0].params  # the token travels in the header only


async def test_last_page_without_response_metadata(slack: SL) -> None:
    slack.state.channels[CHANNEL] = make_messages(3, START)
    slack.state.empty_final_cursor = False
    assert (await slack.client().conversations_history_page(CHANNEL, None, None, None)).next_cursor is None
    slack.state.empty_final_cursor = True
    assert (await slack.client().conversations_history_page(CHANNEL, None, None, None)).next_cursor is None


async def test_history_window(slack: SL) -> None:
    messages = make_messages(10, START)  # one a minute
    slack.state.channels[CHANNEL] = messages
    oldest, latest = float(messages[2]["ts"]), float(messages[7]["ts"])
    items, _ = await history(slack.client(), limit=2, oldest=oldest, latest=latest)
    assert [item["ts"] for item in items] == [m["ts"] for m in reversed(messages[3:7])]  # both ends exclusive
    sent = slack.state.requests[0].params
    assert sent["oldest"] == messages[2]["ts"] and sent["latest"] == messages[7]["ts"]


async def test_unknown_channel_is_permanent_with_the_code(slack: SL) -> None:
    error = await failure(slack.client().conversations_history_page("CNOPE", None, None, None))
    assert (error.status, error.permanent, error.code) == (200, True, "channel_not_found")
    assert str(error) == "Slack answered ok=false: channel_not_found (GET /api/conversations.history)"


async def test_bad_token_is_permanent(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    error = await failure(slack.client("xoxb-revoked").conversations_history_page(CHANNEL, None, None, None))
    assert (error.permanent, error.code) == (True, "invalid_auth")


async def test_ratelimited_in_the_body_is_transient(slack: SL) -> None:
    slack.state.channels[CHANNEL] = make_messages(2, START)
    slack.state.fail_next = ["ratelimited"]
    error = await failure(slack.client().conversations_history_page(CHANNEL, None, None, None))
    assert (error.status, error.permanent, error.code, error.retry_after) == (200, False, "ratelimited", 1.0)
    assert len((await slack.client().conversations_history_page(CHANNEL, None, None, None)).items) == 2


async def test_http_429_is_transient_with_retry_after(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    slack.state.fail_next = [429]
    slack.state.retry_after = "3"
    error = await failure(slack.client().conversations_history_page(CHANNEL, None, None, None))
    assert (error.status, error.permanent, error.retry_after) == (429, False, 3.0)


async def test_500_is_transient(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    slack.state.fail_next = [503]
    error = await failure(slack.client().conversations_history_page(CHANNEL, None, None, None))
    assert (error.status, error.permanent) == (503, False)
    assert "upstream connect error" in str(error)


async def test_slow_answer_is_a_transient_timeout(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    slack.state.delay_seconds = 0.3
    async with loopback_client(timeout=0.05) as impatient:
        client = SlackClient(slack.base, slack.state.token, impatient)
        error = await failure(client.conversations_history_page(CHANNEL, None, None, None))
    assert (error.status, error.permanent) == (None, False)


# chat.postMessage -------------------------------------------------------------------------------


async def test_post_message_returns_slacks_answer(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Post-mortem drafted*"}}]
    answer = await slack.client().post_message(CHANNEL, "Post-mortem drafted", blocks=blocks)
    expected_keys = set(fixture_json("slack_chat_postMessage_response_ok.json"))
    assert set(answer) == expected_keys
    assert answer["ok"] is True and answer["channel"] == CHANNEL
    assert answer["ts"] == answer["message"]["ts"]
    assert answer["message"]["text"] == "Post-mortem drafted"
    (sent,) = slack.state.requests
    assert sent.method == "POST" and sent.path == "/api/chat.postMessage"
    assert sent.headers["content-type"] == "application/json; charset=utf-8"
    assert sent.headers["authorization"] == "Bearer xoxb-fake-token"
    assert json.loads(sent.body) == {"channel": CHANNEL, "text": "Post-mortem drafted", "blocks": blocks}
    # and it shows up in the channel's history
    page = await slack.client().conversations_history_page(CHANNEL, None, None, None)
    assert page == Page(items=[answer["message"]], next_cursor=None)


async def test_post_without_blocks_sends_none(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    await slack.client().post_message(CHANNEL, "hello")
    assert slack.state.posted == [{"channel": CHANNEL, "text": "hello"}]


async def test_post_error_shape_from_the_fixture(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    slack.state.fail_next = [fixture_json("slack_chat_postMessage_response_error.json")["error"]]
    error = await failure(slack.client().post_message(CHANNEL, "hello"))
    assert (error.status, error.permanent, error.code) == (200, True, "too_many_attachments")
    assert str(error) == "Slack answered ok=false: too_many_attachments (POST /api/chat.postMessage)"


async def test_post_to_an_unknown_channel_is_permanent(slack: SL) -> None:
    error = await failure(slack.client().post_message("CNOPE", "hello"))
    assert (error.permanent, error.code) == (True, "channel_not_found")
    assert slack.state.posted == []


async def test_post_rate_limited_is_transient(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    slack.state.fail_next = ["rate_limited"]  # chat.postMessage's own spelling in Slack's spec
    error = await failure(slack.client().post_message(CHANNEL, "hello"))
    assert (error.permanent, error.code, error.retry_after) == (False, "rate_limited", 1.0)


# outages: fail_with(...) until heal(), as end-to-end tests break Slack ---------------------------


@pytest.mark.parametrize("code", ["channel_not_found", "not_in_channel"])
async def test_slack_refusing_to_post_is_permanent_in_its_words_then_heals(slack: SL, code: str) -> None:
    slack.state.channels[CHANNEL] = []
    slack.state.fail_with(code, path="/api/chat.postMessage")
    for _ in range(2):  # it lasts: a retry is refused the same way
        error = await failure(slack.client().post_message(CHANNEL, "Post-mortem published"))
        assert (error.service, error.status, error.permanent, error.code) == ("Slack", 200, True, code)
        assert str(error) == f"Slack answered ok=false: {code} (POST /api/chat.postMessage)"
    assert (slack.state.posted, slack.state.refused) == ([], 2)
    page = await slack.client().conversations_history_page(CHANNEL, None, None, None)  # reading still works
    assert page.items == []

    slack.state.heal()
    answer = await slack.client().post_message(CHANNEL, "Post-mortem published")
    assert answer["ok"] is True
    assert [sent["text"] for sent in slack.state.posted] == ["Post-mortem published"]


@pytest.mark.parametrize(("kind", "status"), [("ratelimited", 200), (429, 429)])
async def test_slack_rate_limiting_is_transient_with_retry_after_then_heals(
    slack: SL, kind: str | int, status: int
) -> None:
    slack.state.channels[CHANNEL] = []
    slack.state.retry_after = "7"
    slack.state.fail_with(kind)
    error = await failure(slack.client().post_message(CHANNEL, "hello"))
    assert (error.status, error.permanent, error.retry_after) == (status, False, 7.0)
    slack.state.heal()
    assert (await slack.client().post_message(CHANNEL, "hello"))["ok"] is True


async def test_heal_also_drops_queued_failures(slack: SL) -> None:
    slack.state.channels[CHANNEL] = []
    slack.state.fail_next = [503, 503]
    slack.state.fail_with("not_in_channel")
    slack.state.heal()
    assert (await slack.client().post_message(CHANNEL, "hello"))["ok"] is True
    assert slack.state.refused == 0


# A post found again by its metadata (an interrupted delivery's retry) ------------------------------


async def test_find_posted_finds_our_key_by_metadata_and_only_with_metadata_asked_for(slack: SL) -> None:
    slack.state.channels[CHANNEL] = make_messages(5, START)
    client = slack.client()
    metadata = {"event_type": "postmortem_delivery", "event_payload": {"key": "pm-1:published:1"}}
    answer = await client.post_message(CHANNEL, "Published", metadata=metadata)
    await client.post_message(CHANNEL, "Other", metadata={**metadata, "event_payload": {"key": "pm-2:published:1"}})
    slack.state.channels[CHANNEL] += make_messages(3, datetime.now(UTC))  # later chatter, newest first
    assert json.loads(slack.state.requests[0].body)["metadata"] == metadata
    assert await client.find_posted(CHANNEL, "postmortem_delivery", "pm-1:published:1", 0) == answer["ts"]
    assert await client.find_posted(CHANNEL, "postmortem_delivery", "pm-3:published:1", 0) is None
    assert await client.find_posted(CHANNEL, "other_event", "pm-1:published:1", 0) is None
    # as Slack: the metadata is in the history only when include_all_metadata is asked for
    plain = await client.conversations_history_page(CHANNEL, None, None, None)
    assert all("metadata" not in message for message in plain.items)
    looked = [r.params for r in slack.state.requests if r.path.endswith("conversations.history")]
    assert [p.get("include_all_metadata") for p in looked] == ["true", "true", "true", None]
