"""An OpenAI-compatible Chat Completions client (OpenAI, Azure OpenAI, Ollama, vLLM, LiteLLM …).

`POST {base_url}/chat/completions` with `{"model", "messages", "temperature"}`; the answer's
`choices[0].message.content` is the text. The base URL is everything before `/chat/completions`:
`https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama), `http://host:8000/v1` (vLLM).
Azure OpenAI is a deployment URL (`https://<resource>.openai.azure.com/openai/deployments/<name>`)
with an `api_version`: then the key goes in the `api-key` header and `?api-version=` is added;
otherwise a key is sent as `Authorization: Bearer`, and none at all when there is no key.

Errors come back as `UpstreamError` in the server's words (`{"error": {"message", "type", "code"}}`).
A timeout, a 5xx or a 429 is tried again `retries` times, waiting what `Retry-After` asks (else a
doubling backoff), never longer than `max_wait` at a time; then the last error is raised, still
marked transient, so the caller can tell "the model was away" from "this will never work" (401,
404 model not found, 400 context too long).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from postmortem.integrations.http_errors import UpstreamError, json_object, request

SERVICE = "Chat Completions"
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ChatAnswer:
    text: str
    model: str | None
    finish_reason: str | None


class ChatClient:
    def __init__(
        self,
        base_url: str,
        *,
        model: str | None,
        api_key: str | None = None,
        api_version: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        max_wait: float = 30.0,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._api_key = api_key
        self._api_version = api_version
        self._timeout = timeout
        self._retries = retries
        self._max_wait = max_wait
        self._own = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()

    def _headers(self) -> dict[str, str]:
        if not self._api_key:
            return {}
        if self._api_version:  # Azure OpenAI's key header
            return {"api-key": self._api_key}
        return {"Authorization": f"Bearer {self._api_key}"}

    async def complete(self, messages: list[dict[str, str]], *, temperature: float = 0.2) -> ChatAnswer:
        """The model's reply to `messages`; an UpstreamError when it did not give one."""
        body: dict[str, Any] = {"messages": messages, "temperature": temperature}
        if self._model:
            body["model"] = self._model
        params = {"api-version": self._api_version} if self._api_version else None
        attempt = 0
        while True:
            try:
                response = await request(
                    self._client,
                    SERVICE,
                    "POST",
                    self._url,
                    json=body,
                    params=params,
                    headers=self._headers(),
                    timeout=self._timeout,
                )
                return _answer(json_object(response, SERVICE))
            except UpstreamError as error:
                if error.permanent or attempt >= self._retries:
                    raise
                wait = error.retry_after if error.retry_after is not None else float(2**attempt)
                await self._sleep(min(wait, self._max_wait))
                attempt += 1


def _answer(body: dict[str, Any]) -> ChatAnswer:
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    message = first.get("message") if first else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        refusal = message.get("refusal") if isinstance(message, dict) else None
        reason = f"refused: {refusal}" if refusal else "no choices[0].message.content"
        raise UpstreamError(SERVICE, 200, f"{SERVICE} answered 200 with {reason}", permanent=True)
    model = body.get("model")
    finish = first.get("finish_reason") if first else None
    return ChatAnswer(
        text=content,
        model=model if isinstance(model, str) else None,
        finish_reason=finish if isinstance(finish, str) else None,
    )
