"""A change of language or time zone keeps the model's narrative (narrative-language): over the real app,
worker and Temporal dev server with the loopback Chat Completions stand-in, the PATCH answers with the
deterministic redraft and the model then writes its own sections again, in the new language; a section
a person edited is never asked for; with the model away the deterministic redraft stays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from postmortem.app.worker import WORKFLOWS
from postmortem.config import LlmSettings
from postmortem.store.store import Store
from postmortem.store.tokens import Role
from tests.api.conftest import Api, running_api
from tests.api.test_review_api import drafted
from tests.fakes.llm import FakeChat, chat_app, language_of, reply_in_language, section_of
from tests.fakes.serve import serve_app
from tests.support import eventually


@pytest_asyncio.fixture
async def with_model(
    dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> AsyncIterator[tuple[Api, FakeChat]]:
    chat = FakeChat(reply=reply_in_language)
    async with serve_app(chat_app(chat)) as url:
        llm = LlmSettings(url=f"{url}/v1", model="gpt-4o-mini", api_key=chat.api_key, retries=1, max_wait_seconds=0)
        async with running_api(dev_env, sqlite_store, tmp_path, llm=llm) as api:
            yield api, chat


async def _report(api: Api, pm_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/api/postmortems/{pm_id}", headers=api.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    return response.json()


async def _narrated(api: Api, pm_id: str) -> dict[str, Any]:
    """The report once the model's first narrative is written (its sections marked)."""

    async def written() -> dict[str, Any] | None:
        report = await _report(api, pm_id)
        return report if any(s["drafted_by"] for s in report["sections"]) else None

    return await eventually(written, timeout=30)


async def _patch(api: Api, pm_id: str, version: int, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.http.patch(
        f"/api/postmortems/{pm_id}", json=body, headers={**api.auth(Role.EDITOR), "If-Match": f'"{version}"'}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_after_a_language_change_the_model_writes_its_sections_again_in_it(
    with_model: tuple[Api, FakeChat],
) -> None:
    api, chat = with_model
    pm_id = await drafted(api, "PLLMLANG")
    first = await _narrated(api, pm_id)
    model = {s["key"] for s in first["sections"] if s["drafted_by"]}
    assert {"summary", "impact"} <= model and all(
        s["body"].startswith("The ") for s in first["sections"] if s["key"] in model
    )
    edited = await _patch(api, pm_id, first["version"], {"sections": {"impact": {"body": "Our own words."}}})
    asked = len(chat.asked)

    switched = await _patch(api, pm_id, edited["version"], {"language": "zh"})
    answered = {s["key"]: s for s in switched["sections"]}
    assert answered["summary"]["title"] == "摘要" and answered["summary"]["drafted_by"] is None  # deterministic
    assert (answered["impact"]["body"], answered["impact"]["edited"]) == ("Our own words.", True)

    async def rewritten() -> dict[str, Any] | None:
        sections = {s["key"]: s for s in (await _report(api, pm_id))["sections"]}
        return sections if all(sections[key]["drafted_by"] for key in model - {"impact"}) else None

    after = await eventually(rewritten, timeout=30)
    for key in model - {"impact"}:
        assert after[key]["drafted_by"] == f"model {chat.model}", key
        assert after[key]["body"].startswith(f"「{after[key]['title']}」依据第一条记录 [E1]。"), key
    assert (after["impact"]["body"], after["impact"]["edited"], after["impact"]["drafted_by"]) == (
        "Our own words.",
        True,
        None,
    )
    prompts = [body["messages"] for body in chat.asked[asked:]]
    assert len(prompts) == len(model) - 1 and all(language_of(p) == "zh" for p in prompts)
    assert after["impact"]["title"] not in {section_of(p) for p in prompts}  # the edited one is not even asked

    handle = api.env.client.get_workflow_handle(f"postmortem-{pm_id}")
    history = await handle.fetch_history()
    assert "sections_redrafted" in history.to_json()
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)


async def test_a_new_zone_with_the_model_away_keeps_the_deterministic_redraft(
    with_model: tuple[Api, FakeChat],
) -> None:
    api, chat = with_model
    pm_id = await drafted(api, "PLLMZONE")
    first = await _narrated(api, pm_id)
    chat.fail_with(503)

    moved = await _patch(api, pm_id, first["version"], {"timezone": "Asia/Tokyo"})
    summary = next(s for s in moved["sections"] if s["key"] == "summary")
    assert "JST" in summary["body"] and summary["drafted_by"] is None
    handle = api.env.client.get_workflow_handle(f"postmortem-{pm_id}")

    async def given_up() -> bool:  # asked (one try, one retry), refused, and the step is over
        return chat.refused >= 2 and not (await handle.describe()).raw_description.pending_activities

    await eventually(given_up, timeout=30)
    report = await _report(api, pm_id)
    assert report["sections"] == moved["sections"] and report["version"] == moved["version"]
    assert report["problems"] == []  # the model away is no problem: the deterministic text stays
