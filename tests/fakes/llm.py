"""A loopback OpenAI-compatible Chat Completions API: `POST /v1/chat/completions` (and Azure's
`/openai/deployments/<name>/chat/completions?api-version=`).

Shapes from the OpenAI API reference (platform.openai.com/docs/api-reference/chat/object, and the
error codes guide): a completion is `{"id": "chatcmpl-…", "object": "chat.completion", "created",
"model", "choices": [{"index", "message": {"role": "assistant", "content", "refusal"}, "logprobs",
"finish_reason": "stop"}], "usage": {…}, "system_fingerprint"}`; an error is HTTP 4xx/5xx with
`{"error": {"message", "type", "param", "code"}}` — 401 `invalid_api_key`, 404 `model_not_found`,
429 `rate_limit_exceeded` with `Retry-After`, 500 `server_error`. Ollama and vLLM answer the same
shapes on their OpenAI-compatible endpoints.

`reply(messages)` writes the answer; the default cites the first two entry ids of the prompt and
adds one sentence citing an entry that does not exist and one citing nothing. `api_key=None` is a
server that asks for no key (Ollama, vLLM without `--api-key`): every request is answered.
`reply_in_language` answers in the language the prompt asks for (`language_of`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes.serve import Outage, Recorded, Switchable, fake_app, reset_fake

ERRORS: dict[int, dict[str, Any]] = {
    401: {
        "message": "Incorrect API key provided: sk-wrong. You can find your API key at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    },
    404: {
        "message": "The model `gpt-nope` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    },
    429: {
        "message": "Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    },
    500: {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    },
}
_IDS = re.compile(r"^\[(E\d+)\]", re.MULTILINE)


def entry_ids(messages: list[dict[str, str]]) -> list[str]:
    """The timeline ids the prompt gave, in order."""
    return _IDS.findall(messages[-1]["content"])


def section_of(messages: list[dict[str, str]]) -> str:
    found = re.search(r'^Section: "(.*)"$', messages[-1]["content"], re.MULTILINE)
    return found.group(1) if found else ""


def default_reply(messages: list[dict[str, str]]) -> str:
    ids = entry_ids(messages) or ["E1"]
    first, last = ids[0], ids[-1]
    return (
        f"The {section_of(messages)} rests on the first entry [{first}]. "
        f"It ended with the last one [{last}].\n"
        "The database was overloaded by a batch job [E999]. "
        "Everyone worked hard."
    )


def language_of(messages: list[dict[str, str]]) -> str:
    """The language the prompt asks the answer in ("zh" or "en"), from its closing line."""
    return "zh" if "请用简体中文撰写" in messages[-1]["content"] else "en"


def reply_in_language(messages: list[dict[str, str]]) -> str:
    """A cited answer in the language the prompt asks for (a model that follows `write_in`)."""
    first = (entry_ids(messages) or ["E1"])[0]
    if language_of(messages) == "zh":
        return f"「{section_of(messages)}」依据第一条记录 [{first}]。"
    return f"The {section_of(messages)} rests on the first entry [{first}]."


@dataclass
class FakeChat(Switchable):
    api_key: str | None = "sk-fake-key"
    model: str = "gpt-4o-mini-2024-07-18"
    reply: Callable[[list[dict[str, str]]], str] = default_reply
    requests: list[Recorded] = field(default_factory=list)
    asked: list[dict[str, Any]] = field(default_factory=list)  # request bodies that were answered
    # an int answers that status with OpenAI's error body for it; "refusal" answers content null
    fail_next: list[int | str] = field(default_factory=list)
    retry_after: str | None = "1"
    delay_seconds: float = 0.0
    epoch: int = 0
    outage: Outage | None = None
    refused: int = 0

    def reset(self) -> None:
        reset_fake(self)

    def completions(self) -> list[dict[str, Any]]:
        return self.asked


def _failure(state: FakeChat, kind: int | str) -> Response:
    if kind == "refusal":
        return JSONResponse(_completion(state, None, refusal="I can't help with that."))
    status = int(kind)
    error = ERRORS.get(status, ERRORS[500])
    headers = {"retry-after": state.retry_after} if status == 429 and state.retry_after else None
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _completion(state: FakeChat, content: str | None, refusal: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": state.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
        "system_fingerprint": "fp_6b68a8204b",
    }


def _authorized(state: FakeChat, request: Request) -> bool:
    if state.api_key is None:
        return True
    if "api-version" in request.query_params:  # Azure: the key in its own header
        return request.headers.get("api-key") == state.api_key
    return request.headers.get("authorization") == f"Bearer {state.api_key}"


def chat_app(state: FakeChat) -> FastAPI:
    app = fake_app(
        state,
        failure=lambda kind: _failure(state, kind),
        authorized=lambda request: _authorized(state, request),
        unauthorized=lambda: JSONResponse({"error": ERRORS[401]}, status_code=401),
    )

    async def answer(request: Request) -> Response:
        body = json.loads(await request.body())
        if body.get("model", state.model) == "gpt-nope":
            return JSONResponse({"error": ERRORS[404]}, status_code=404)
        state.asked.append(body)
        return JSONResponse(_completion(state, state.reply(body["messages"])))

    app.add_api_route("/v1/chat/completions", answer, methods=["POST"])
    app.add_api_route("/openai/deployments/{deployment}/chat/completions", answer, methods=["POST"])
    return app
