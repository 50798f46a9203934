"""draft_narrative against the loopback Chat Completions stand-in and a real store: the draft holds
only cited sentences and marks them, survives the model being down, never touches an edited
section, and sends only the report's own evidence (redacted when the team asks)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from postmortem.activities.narrative import DraftNarrativeInput, DraftNarrativeResult, NarrativeActivities
from postmortem.config import LlmSettings
from postmortem.evidence.timeline import from_incident
from postmortem.models import Language, Postmortem
from postmortem.report.rendering import render_markdown
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event
from tests.fakes.llm import FakeChat, chat_app
from tests.fakes.serve import loopback_client, serve_app

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NARRATED = ["summary", "root_cause", "impact", "detection_response", "resolution"]


@dataclass
class World:
    store: Store
    chat: FakeChat
    url: str
    pm: Postmortem

    def activities(self, **llm: object) -> NarrativeActivities:
        options: dict[str, object] = {
            "url": f"{self.url}/v1",
            "model": "gpt-4o-mini",
            "api_key": self.chat.api_key,
            "retries": 1,
            "max_wait_seconds": 0,
        }
        options.update(llm)
        return NarrativeActivities(
            self.store.postmortems,
            self.store.evidence,
            llm=LlmSettings(**options),
            templates=self.store.templates,
            client=loopback_client(),
        )

    async def run(self, redact: bool = False, **llm: object) -> DraftNarrativeResult:
        request = DraftNarrativeInput(postmortem_id=self.pm.id, redact=redact, now=NOW)
        return await ActivityEnvironment().run(self.activities(**llm).draft_narrative, request)

    async def report(self) -> Postmortem:
        return await self.store.postmortems.get(self.pm.id)


async def _world(store: Store, language: Language = Language.EN) -> AsyncIterator[World]:
    chat = FakeChat()
    incident = pagerduty_event("PNARRATE").incident
    pm, _ = await store.postmortems.create_if_absent(new_postmortem(incident, created_at=NOW, language=language))
    await store.evidence.add_entries(pm.id, from_incident(incident))
    async with serve_app(chat_app(chat)) as url:
        yield World(store, chat, url, pm)


@pytest_asyncio.fixture
async def world(sqlite_store: Store) -> AsyncIterator[World]:
    async for made in _world(sqlite_store):
        yield made


async def test_the_draft_holds_only_cited_sentences_and_marks_them(world: World) -> None:
    before = {s.key: s.body for s in world.pm.sections}
    result = await world.run()
    pm = await world.report()
    by_key = {s.key: s for s in pm.sections}
    assert sorted(result.drafted) == sorted(k for k in NARRATED if k in by_key)
    summary = by_key["summary"]
    assert summary.drafted_by == f"model {world.chat.model}"
    assert "rests on the first entry [E1]." in summary.body and "[E999]" not in summary.body
    assert "Everyone worked hard" not in summary.body and "batch job" not in summary.body
    assert "Sources:" in summary.body and "- [E1] " in summary.body
    assert result.dropped["summary"] == 2
    assert by_key["timeline"].body == before["timeline"] and by_key["timeline"].drafted_by is None
    markdown = render_markdown(pm)
    assert "_Drafted by a language model from the timeline" in markdown
    assert markdown.count("Drafted by a language model") == len(result.drafted)


async def test_a_section_a_person_edited_is_never_touched(world: World) -> None:
    sections = [
        s.model_copy(update={"body": "Our own words.", "edited": True}) if s.key == "summary" else s
        for s in world.pm.sections
    ]
    await world.store.postmortems.update(world.pm.id, world.pm.version, PostmortemChanges(sections=sections), NOW)
    result = await world.run()
    summary = next(s for s in (await world.report()).sections if s.key == "summary")
    assert (summary.body, summary.drafted_by) == ("Our own words.", None)
    assert "summary" in result.skipped and "summary" not in result.drafted
    asked = [json.loads(r.body)["messages"][1]["content"] for r in world.chat.requests]
    assert not any('Section: "Summary"' in text for text in asked)  # not even asked


async def test_the_model_being_down_leaves_the_deterministic_draft(world: World) -> None:
    world.chat.fail_with(500)
    result = await world.run()
    assert result.drafted == [] and "500" in (result.fallback or "")
    assert (await world.report()).sections == world.pm.sections
    assert world.chat.refused == 2  # one try and one retry, then it gave up


async def _nothing_is_the_models(world: World) -> None:
    pm = await world.report()
    assert pm.sections == world.pm.sections and pm.version == world.pm.version
    assert all(s.drafted_by is None for s in pm.sections)
    assert "Drafted by a language model" not in render_markdown(pm)


async def test_a_model_slower_than_the_timeout_leaves_the_deterministic_draft(world: World) -> None:
    world.chat.delay_seconds = 1.0
    result = await world.run(timeout_seconds=0.25)
    assert result.drafted == [] and "did not answer in time" in (result.fallback or "")
    await _nothing_is_the_models(world)
    assert len(world.chat.requests) == 2 and world.chat.asked == []  # one try, one retry, then it gave up


async def test_a_rate_limit_that_persists_past_the_retries_leaves_the_deterministic_draft(world: World) -> None:
    world.chat.fail_with(429)
    result = await world.run(retries=2)
    assert result.drafted == [] and "Rate limit reached" in (result.fallback or "")
    await _nothing_is_the_models(world)
    assert world.chat.refused == 3  # the first section, tried three times; the others never asked


@pytest.mark.parametrize("key", [None, ""])
async def test_a_model_without_a_key_is_asked_without_authorization(world: World, key: str | None) -> None:
    """Ollama or vLLM: no POSTMORTEM_LLM_API_KEY (or an empty one), no Authorization header at all."""
    world.chat.api_key = None  # the server asks for none
    result = await world.run(api_key=key)
    assert "summary" in result.drafted
    assert world.chat.requests and all("authorization" not in r.headers for r in world.chat.requests)


async def test_a_configured_key_is_sent_as_a_bearer_token(world: World) -> None:
    result = await world.run()
    assert "summary" in result.drafted
    assert {r.headers.get("authorization") for r in world.chat.requests} == {f"Bearer {world.chat.api_key}"}


async def test_a_rate_limit_then_an_answer_is_drafted(world: World) -> None:
    world.chat.fail_next = [429]
    world.chat.retry_after = "0"
    result = await world.run()
    assert "summary" in result.drafted


async def test_a_wrong_key_is_a_failure_for_good(world: World) -> None:
    with pytest.raises(ApplicationError, match="Incorrect API key") as caught:
        await world.run(api_key="sk-wrong")
    assert caught.value.non_retryable
    assert (await world.report()).sections == world.pm.sections


async def test_a_second_run_does_not_ask_again(world: World) -> None:
    await world.run()
    asked = len(world.chat.asked)
    again = await world.run()
    assert len(world.chat.asked) == asked and again.drafted == []


async def test_only_the_reports_evidence_is_sent_redacted_when_asked(world: World) -> None:
    responders = [p for i in world.pm.incidents for p in i.responders if p.name]
    assert responders, "the fixture names its responders"
    await world.run(redact=True)
    sent = "\n".join(json.loads(r.body)["messages"][1]["content"] for r in world.chat.requests)
    assert "[E1]" in sent and world.pm.incidents[0].title in sent
    for person in responders:
        assert person.name and person.name not in sent
        assert not person.email or person.email not in sent
    assert "[redacted]" in sent


async def test_not_configured_does_nothing(world: World) -> None:
    result = await world.run(url=None)
    assert result.drafted == [] and "POSTMORTEM_LLM_URL" in (result.fallback or "")
    assert world.chat.requests == []


@pytest_asyncio.fixture
async def chinese(sqlite_store: Store) -> AsyncIterator[World]:
    async for made in _world(sqlite_store, Language.ZH):
        yield made


async def test_a_chinese_report_asks_in_chinese_with_the_templates_instructions(chinese: World) -> None:
    chinese.chat.reply = lambda messages: "支付服务开始报错 [E1]。原因不明。"
    await chinese.run()
    first = json.loads(chinese.chat.requests[0].body)["messages"][1]["content"]
    assert "请用简体中文撰写。" in first and "用两三句话让新同事看懂" in first
    summary = next(s for s in (await chinese.report()).sections if s.key == "summary")
    assert summary.body.startswith("支付服务开始报错 [E1]。\n\n依据:")
    assert "由语言模型根据时间线起草" in render_markdown(await chinese.report())


async def test_after_a_refresh_the_model_writes_its_sections_again_never_an_edited_one(world: World) -> None:
    """narrative-redraft: a late source brought a Slack message; the refresh leaves the model's sections
    to the redraft, which writes them again from the fuller timeline (citing the new entry), while
    the section a person edited since stays theirs and is not even asked for."""
    from datetime import timedelta

    from postmortem.activities.refresh import RefreshActivities, RefreshReportInput
    from postmortem.evidence.models import EntryKind, EvidenceSource, TimelineEntry

    first = await world.run()
    assert "summary" in first.drafted and "detection_response" in first.drafted
    pm = await world.report()
    sections = [
        s.model_copy(update={"body": "Our own words.", "edited": True, "drafted_by": None}) if s.key == "impact" else s
        for s in pm.sections
    ]
    pm = await world.store.postmortems.update(pm.id, pm.version, PostmortemChanges(sections=sections), NOW)
    before = {s.key: s for s in pm.sections}
    late = TimelineEntry(
        key="slack:late-1",
        at=pm.metrics.started_at + timedelta(minutes=3) if pm.metrics.started_at else NOW,
        kind=EntryKind.MESSAGE,
        source=EvidenceSource.SLACK,
        text="Rolled back the config push",
    )
    await world.store.evidence.add_entries(pm.id, [late])
    refresh = RefreshActivities(world.store.postmortems, world.store.evidence, world.store.templates)
    await ActivityEnvironment().run(refresh.refresh_report, RefreshReportInput(postmortem_id=pm.id, keep_drafted=True))
    refreshed = {s.key: s for s in (await world.report()).sections}
    assert refreshed["detection_response"] == before["detection_response"]  # the model's: left to the redraft
    assert "Rolled back the config push" in refreshed["timeline"].body
    asked = len(world.chat.asked)

    again = await ActivityEnvironment().run(
        world.activities().draft_narrative, DraftNarrativeInput(postmortem_id=pm.id, now=NOW, redraft=True)
    )
    assert sorted(again.drafted) == sorted(k for k in NARRATED if k != "impact") and "impact" in again.skipped
    prompts = [body["messages"][-1]["content"] for body in world.chat.asked[asked:]]
    assert all("Rolled back the config push" in text for text in prompts)
    assert not any('Section: "Impact"' in text for text in prompts)
    after = {s.key: s for s in (await world.report()).sections}
    assert (after["impact"].body, after["impact"].edited) == ("Our own words.", True)
    for key in again.drafted:
        assert after[key].drafted_by == before[key].drafted_by and after[key].body != before[key].body, key
    # A first draft's step run again writes nothing: each narrated section is the model's or a person's.
    assert (await world.run()).drafted == []


async def test_after_a_language_change_the_named_sections_are_written_again_never_one_edited_since(
    world: World,
) -> None:
    """narrative-language: a language change gave the model's sections the deterministic text (no mark);
    the step names them, and writes each again unless a person edited it after the change."""
    await world.run()
    pm = await world.report()
    wrote = [s.key for s in pm.sections if s.drafted_by]
    sections = [
        s.model_copy(update={"body": "Edited after the switch.", "edited": True, "drafted_by": None})
        if s.key == "summary"
        else s.model_copy(update={"body": "Deterministic again.", "drafted_by": None})
        if s.key in wrote
        else s
        for s in pm.sections
    ]
    await world.store.postmortems.update(pm.id, pm.version, PostmortemChanges(sections=sections), NOW)
    asked = len(world.chat.asked)

    again = await ActivityEnvironment().run(
        world.activities().draft_narrative, DraftNarrativeInput(postmortem_id=pm.id, now=NOW, sections=wrote)
    )
    assert sorted(again.drafted) == sorted(k for k in wrote if k != "summary") and "summary" in again.skipped
    assert not any('Section: "Summary"' in body["messages"][-1]["content"] for body in world.chat.asked[asked:])
    after = {s.key: s for s in (await world.report()).sections}
    assert (after["summary"].body, after["summary"].edited) == ("Edited after the switch.", True)
    for key in again.drafted:
        assert after[key].drafted_by == f"model {world.chat.model}" and "[E1]" in after[key].body, key
