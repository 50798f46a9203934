"""The Chat Completions client against the loopback stand-in: OpenAI and Azure addressing, the
server's own error words, and retries that honour Retry-After before giving up."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.llm_chat import ChatClient
from tests.fakes.llm import FakeChat, chat_app
from tests.fakes.serve import loopback_client, serve_app

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[tuple[FakeChat, str]]:
    state = FakeChat(reply=lambda messages: "hi [E1].")
    async with serve_app(chat_app(state)) as url:
        yield state, url


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _client(url: str, state: FakeChat, waits: Waits | None = None, **kwargs: object) -> ChatClient:
    options: dict[str, object] = {"model": "gpt-4o-mini", "api_key": state.api_key, "retries": 2, "max_wait": 5.0}
    options.update(kwargs)
    return ChatClient(url, client=loopback_client(), sleep=waits or Waits(), **options)  # type: ignore[arg-type]


async def test_openai_style_bearer_key_model_and_messages(fake: tuple[FakeChat, str]) -> None:
    state, url = fake
    chat = _client(f"{url}/v1/", state)
    answer = await chat.complete(MESSAGES)
    assert (answer.text, answer.model, answer.finish_reason) == ("hi [E1].", state.model, "stop")
    [request] = state.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {state.api_key}"
    assert json.loads(request.body) == {"messages": MESSAGES, "temperature": 0.2, "model": "gpt-4o-mini"}


async def test_azure_deployment_url_api_key_header_and_version(fake: tuple[FakeChat, str]) -> None:
    state, url = fake
    chat = _client(f"{url}/openai/deployments/pm-drafts", state, api_version="2024-10-21", model=None)
    assert (await chat.complete(MESSAGES)).text == "hi [E1]."
    [request] = state.requests
    assert request.path == "/openai/deployments/pm-drafts/chat/completions"
    assert request.params == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == state.api_key and "authorization" not in request.headers
    assert "model" not in json.loads(request.body)


async def test_a_wrong_key_is_permanent_in_the_servers_words(fake: tuple[FakeChat, str]) -> None:
    state, url = fake
    with pytest.raises(UpstreamError) as caught:
        await _client(f"{url}/v1", state, api_key="sk-wrong").complete(MESSAGES)
    assert caught.value.permanent and caught.value.status == 401 and caught.value.code == "invalid_api_key"
    assert "Incorrect API key provided" in str(caught.value)
    assert len(state.requests) == 1  # not tried again


async def test_an_unknown_model_is_permanent(fake: tuple[FakeChat, str]) -> None:
    state, url = fake
    with pytest.raises(UpstreamError, match="does not exist") as caught:
        await _client(f"{url}/v1", state, model="gpt-nope").complete(MESSAGES)
    assert caught.value.permanent and caught.value.code == "model_not_found"


async def test_a_rate_limit_waits_what_retry_after_asks_then_succeeds(fake: tuple[FakeChat, str]) -> None:
    state, url = fake
    state.fail_next = [429, 500]
    state.retry_after = "3"
    waits = Waits()
    assert (await _client(f"{url}/v1", state, waits).complete(MESSAGES)).text == "hi [E1]."
    assert waits.seconds == [3.0, 2.0]  # Retry-After, then the doubling backoff (2 s on the second try)
    assert len(state.requests) == 3


async def test_a_long_retry_after_is_capped(fake: tuple[FakeChat, str]) -> None:
    state, url = fake
    state.fail_next = [429]
    state.retry_after = "3600"
    waits = Waits()
    await _client(f"{url}/v1", state, waits, max_wait=5.0).complete(MESSAGES)
    assert waits.seconds == [5.0]


async def test_a_model_that_stays_down_gives_a_transient_error_after_the_retries(
    fake: tuple[FakeChat, str],
) -> None:
    state, url = fake
    state.fail_with(500)
    waits = Waits()
    with pytest.raises(UpstreamError) as caught:
        await _client(f"{url}/v1", state, waits, retries=2).complete(MESSAGES)
    assert not caught.value.permanent and caught.value.status == 500
    assert "The server had an error while processing your request" in str(caught.value)
    assert state.refused == 3 and waits.seconds == [1.0, 2.0]


async def test_a_rate_limit_that_outlasts_the_retries_is_transient_in_the_servers_words(
    fake: tuple[FakeChat, str],
) -> None:
    state, url = fake
    state.fail_with(429)
    state.retry_after = "4"
    waits = Waits()
    with pytest.raises(UpstreamError) as caught:
        await _client(f"{url}/v1", state, waits, retries=2).complete(MESSAGES)
    assert not caught.value.permanent and caught.value.status == 429 and caught.value.code == "rate_limit_exceeded"
    assert "Rate limit reached" in str(caught.value)
    assert state.refused == 3 and waits.seconds == [4.0, 4.0]  # Retry-After each time, then it gave up


async def test_a_model_slower_than_the_timeout_is_transient_after_the_retries(fake: tuple[FakeChat, str]) -> None:
    state, url = fake
    state.delay_seconds = 1.0
    waits = Waits()
    with pytest.raises(UpstreamError, match="did not answer in time") as caught:
        await _client(f"{url}/v1", state, waits, retries=1, timeout=0.25).complete(MESSAGES)
    assert not caught.value.permanent
    assert len(state.requests) == 2 and state.asked == []  # asked twice, answered never
    assert waits.seconds == [1.0]


@pytest.mark.parametrize("key", [None, ""])
async def test_without_a_key_no_authorization_header_is_sent(key: str | None) -> None:
    """Ollama and vLLM (without --api-key) need none; an empty POSTMORTEM_LLM_API_KEY is none either."""
    state = FakeChat(api_key=None, reply=lambda messages: "hi [E1].")
    async with serve_app(chat_app(state)) as url:
        assert (await _client(f"{url}/v1", state, api_key=key).complete(MESSAGES)).text == "hi [E1]."
    [request] = state.requests
    assert "authorization" not in request.headers and "api-key" not in request.headers


async def test_an_unreachable_model_is_transient() -> None:
    chat = ChatClient("http://127.0.0.1:9/v1", model="m", retries=0, client=loopback_client())
    with pytest.raises(UpstreamError, match="could not be reached") as caught:
        await chat.complete(MESSAGES)
    assert not caught.value.permanent


async def test_a_refusal_is_not_text(fake: tuple[FakeChat, str]) -> None:
    state, url = fake
    state.fail_next = ["refusal"]
    with pytest.raises(UpstreamError, match="refused: I can't help with that") as caught:
        await _client(f"{url}/v1", state).complete(MESSAGES)
    assert caught.value.permanent
