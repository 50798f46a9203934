"""The model step in the report's workflow (time-skipping server, loopback Chat Completions): it runs
after the deterministic draft when configured; the model away leaves the draft; a failure for good
is a problem of the report whose retry drafts the narrative once the model answers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from postmortem.app.worker import WORKFLOWS
from postmortem.config import LlmSettings
from postmortem.models import Section
from postmortem.review.problems import ProblemState
from postmortem.store.store import Store
from postmortem.workflows.inputs import RetryProblemRequest
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow
from tests.factories import new_postmortem, pagerduty_event
from tests.fakes.llm import FakeChat, chat_app
from tests.fakes.serve import serve_app
from tests.support import eventually
from tests.workflow.harness import EDITOR, World, drafted, world


@pytest_asyncio.fixture
async def chat() -> AsyncIterator[tuple[FakeChat, str]]:
    state = FakeChat()
    async with serve_app(chat_app(state)) as url:
        yield state, url


def _llm(url: str, key: str | None) -> LlmSettings:
    return LlmSettings(url=f"{url}/v1", model="gpt-4o-mini", api_key=key, retries=1, max_wait_seconds=0)


async def _sections(report: World) -> dict[str, Section]:
    return {s.key: s for s in (await report.store.postmortems.get(report.postmortem_id)).sections}


async def test_a_configured_model_drafts_the_cited_narrative(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, chat: tuple[FakeChat, str]
) -> None:
    state, url = chat
    async with world(time_skipping_env, sqlite_store, llm=_llm(url, state.api_key)) as report:
        await drafted(report)  # the meeting is planned after the narrative
        sections = await _sections(report)
        assert sections["summary"].drafted_by == f"model {state.model}"
        assert "[E999]" not in sections["summary"].body and "[E1]" in sections["summary"].body
        assert sections["timeline"].drafted_by is None
        assert await report.store.problems.list(report.postmortem_id) == []
        history = await report.handle.fetch_history()
        assert "draft_narrative" in history.to_json()
        await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)
        if name := os.environ.get("POSTMORTEM_RECORD_NARRATIVE_HISTORY"):  # tests/histories/<name>.json
            (Path(__file__).resolve().parents[1] / "histories" / f"{name}.json").write_text(history.to_json())


async def test_without_a_model_the_step_is_not_run_and_the_draft_lists_similar_reports(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, chat: tuple[FakeChat, str]
) -> None:
    state, _ = chat
    earlier = datetime.now(UTC) - timedelta(days=30)
    past, _ = await sqlite_store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event("PPAST1").incident, created_at=earlier)  # the same service, pig208
    )
    async with world(time_skipping_env, sqlite_store) as report:
        await drafted(report)
        pm = await report.store.postmortems.get(report.postmortem_id)
        assert [s.id for s in pm.similar] == [past.id]
        assert all(s.drafted_by is None for s in pm.sections)
        history = await report.handle.fetch_history()
        assert "draft_narrative" not in history.to_json()
        assert state.requests == []


async def test_the_model_down_leaves_the_draft_and_the_review_goes_on(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, chat: tuple[FakeChat, str]
) -> None:
    state, url = chat
    state.fail_with(503)
    async with world(time_skipping_env, sqlite_store, llm=_llm(url, state.api_key)) as report:
        await drafted(report)
        assert state.refused >= 2
        assert all(s.drafted_by is None for s in (await _sections(report)).values())
        assert await report.store.problems.list(report.postmortem_id) == []


async def test_a_wrong_key_is_a_problem_and_its_retry_drafts_once_fixed(
    time_skipping_env: WorkflowEnvironment, sqlite_store: Store, chat: tuple[FakeChat, str]
) -> None:
    state, url = chat
    async with world(time_skipping_env, sqlite_store, llm=_llm(url, "sk-wrong")) as report:
        problem = await report.problem("narrative", "model")
        assert "Incorrect API key provided" in problem.message
        await drafted(report)  # the report went on without the narrative
        assert all(s.drafted_by is None for s in (await _sections(report)).values())
        state.api_key = "sk-wrong"  # the operator fixed the key
        await report.update(PostmortemWorkflow.retry_problem, RetryProblemRequest(problem_id=problem.id, actor=EDITOR))

        async def narrated() -> bool:
            return (await _sections(report))["summary"].drafted_by is not None

        await eventually(narrated, timeout=30)
        await report.problem("narrative", "model", state=ProblemState.RESOLVED.value)
