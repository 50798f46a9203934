"""Step: the optional model drafts the narrative sections of a fresh draft, each sentence cited.

Runs after the deterministic draft, only when POSTMORTEM_LLM_URL is set. Each section whose template
gives it `instructions` (Summary, Impact, Detection and response, Resolution, Root cause and
contributing factors in the built-in ones) is asked for separately, with the report's own timeline
and key metrics — after the public summary's redaction when the team sets `narrative_redact`. Only
cited sentences are kept (`postmortem.report.narrative`); a section is replaced only while nobody
edited it (checked again at the write, which names the version it read), and is marked
`drafted_by` until a person edits it.

After a refresh of the evidence (a late source, a gather retried) the workflow asks again with
`redraft`: only the sections still `drafted_by` the model are written anew from the fuller timeline;
an edited one never, and the refresh leaves the model's sections to this step. After a change of
language or time zone (whose redraft gave the model's sections the deterministic text) it asks with
`sections`: those are written anew, in the report's language and zone, unless a person edited one since.

Failure: a timeout, 5xx or 429 that outlasts the client's retries leaves the deterministic draft
(the result says why); a failure for good (401, unknown model, a refusal) raises non-retryable, so
the workflow records it as a problem on the report that a person can retry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from datetime import datetime

import httpx
from pydantic import AwareDatetime, BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from postmortem.activities.clients import llm_configured
from postmortem.config import LlmSettings, ReportSettings, reveal
from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.llm_chat import ChatClient
from postmortem.models import Postmortem, Section, Status
from postmortem.report import narrative
from postmortem.report.public_summary import redactor
from postmortem.report.template_catalogue import ReportTemplate, builtin_template
from postmortem.store.evidence import EvidenceStore
from postmortem.store.postmortems import NotFound, PostmortemChanges, PostmortemStore, VersionConflict
from postmortem.store.templates import TemplateStore


class DraftNarrativeInput(BaseModel):
    postmortem_id: str
    redact: bool = Field(default=False, description="send the evidence through the public summary's redaction")
    now: AwareDatetime
    redraft: bool = Field(
        default=False,
        description="the evidence was refreshed: write again the sections the model wrote (never an edited one)",
    )
    sections: list[str] = Field(
        default_factory=list,
        description="a language or zone change redrafted these sections the model wrote: write them again "
        "(never one a person edited since)",
    )


class DraftNarrativeResult(BaseModel):
    drafted: list[str] = Field(default_factory=list, description="sections the model wrote")
    skipped: list[str] = Field(default_factory=list, description="edited by a person, or already drafted")
    empty: list[str] = Field(default_factory=list, description="no cited sentence survived: the draft stays")
    dropped: dict[str, int] = Field(default_factory=dict, description="uncited sentences dropped, per section")
    fallback: str | None = Field(default=None, description="why the deterministic draft stays (the model was away)")


def _identity(text: str) -> str:
    return text


def _ours(section: Section, *, redraft: bool, sections: Collection[str] = ()) -> bool:
    """May the model write this section? Never once a person edited it; a first draft writes what the
    model has not written yet, a redraft (fresh evidence) only what the model wrote, and after a change
    of language or zone the sections named (the model's before the change)."""
    if section.edited:
        return False
    if sections:
        return section.key in sections
    return section.drafted_by is not None if redraft else section.drafted_by is None


class NarrativeActivities:
    def __init__(
        self,
        store: PostmortemStore,
        evidence: EvidenceStore,
        *,
        llm: LlmSettings,
        report: ReportSettings | None = None,
        templates: TemplateStore | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._store = store
        self._evidence = evidence
        self._llm = llm
        self._report = report or ReportSettings()
        self._templates = templates
        self._client = client

    def _chat(self) -> ChatClient:
        assert self._llm.url is not None
        return ChatClient(
            self._llm.url,
            model=self._llm.model,
            api_key=reveal(self._llm.api_key),
            api_version=self._llm.api_version,
            timeout=self._llm.timeout_seconds,
            retries=self._llm.retries,
            max_wait=self._llm.max_wait_seconds,
            client=self._client,
        )

    async def _template(self, pm: Postmortem) -> ReportTemplate:
        if pm.template_name and self._templates is not None:
            with contextlib.suppress(NotFound):
                return (await self._templates.get(pm.template_name))[0]
        return builtin_template(pm.language, pm.variant)

    @activity.defn(name="draft_narrative")
    async def draft_narrative(self, input: DraftNarrativeInput) -> DraftNarrativeResult:
        result = DraftNarrativeResult()
        if not llm_configured(self._llm):
            result.fallback = "no model is configured (POSTMORTEM_LLM_URL)"
            return result
        try:
            pm = await self._store.get(input.postmortem_id)
        except NotFound:
            return result  # deleted meanwhile
        if pm.status != Status.DRAFT:
            return result
        template = await self._template(pm)
        instructions = {s.key: s.instructions for s in template.sections if s.instructions.strip()}
        wanted = [
            s for s in pm.sections if s.key in instructions and _ours(s, redraft=input.redraft, sections=input.sections)
        ]
        result.skipped = [s.key for s in pm.sections if s.key in instructions and s not in wanted]
        if not wanted:
            return result
        clean: Callable[[str], str] = (
            redactor(pm, redact=self._report.public_redact_patterns) if input.redact else _identity
        )
        entries = narrative.chosen(await self._evidence.entries(pm.id))
        sent = narrative.evidence(entries, zone=pm.timezone, language=pm.language, clean=clean)
        shown = narrative.evidence(entries, zone=pm.timezone, language=pm.language, clean=_identity)
        metrics = narrative.metrics_text(pm.metrics, zone=pm.timezone, language=pm.language, clean=clean)
        bodies: dict[str, tuple[str, str]] = {}
        chat = self._chat()
        try:
            for section in wanted:
                activity.heartbeat(section.key)
                prompt = narrative.messages(
                    title=clean(pm.title),
                    section_title=section.title,
                    instructions=instructions[section.key],
                    language=pm.language,
                    metrics=metrics,
                    timeline=sent,
                )
                try:
                    answer = await chat.complete(prompt)
                except UpstreamError as error:
                    if error.permanent:
                        raise ApplicationError(str(error), type="ModelRefused", non_retryable=True) from error
                    result.fallback = str(error)  # the model is away: what it wrote so far is kept
                    break
                kept = narrative.cited(answer.text, sent.entries)
                if kept.dropped:
                    result.dropped[section.key] = kept.dropped
                if not kept.kept:
                    result.empty.append(section.key)
                    continue
                body = narrative.section_body(kept, shown, zone=pm.timezone, language=pm.language, clean=_identity)
                bodies[section.key] = (body, narrative.drafted_by(answer.model or self._llm.model))
        finally:
            await chat.aclose()
        if bodies:
            result.drafted = await self._write(
                input.postmortem_id, bodies, input.now, redraft=input.redraft, named=input.sections
            )
            result.skipped += [key for key in bodies if key not in result.drafted]
        return result

    async def _write(
        self,
        postmortem_id: str,
        bodies: dict[str, tuple[str, str]],
        now: datetime,
        *,
        redraft: bool = False,
        named: Collection[str] = (),
    ) -> list[str]:
        """Replace the sections still unedited; a person's concurrent edit wins (read again, retry)."""
        for _ in range(5):
            try:
                pm = await self._store.get(postmortem_id)
            except NotFound:
                return []
            if pm.status != Status.DRAFT:
                return []
            written: list[str] = []
            sections: list[Section] = []
            for section in pm.sections:
                if section.key in bodies and _ours(section, redraft=redraft, sections=named):
                    body, by = bodies[section.key]
                    sections.append(section.model_copy(update={"body": body, "drafted_by": by}))
                    written.append(section.key)
                else:
                    sections.append(section)
            if not written:
                return []
            try:
                await self._store.update(pm.id, pm.version, PostmortemChanges(sections=sections), now)
            except VersionConflict:
                continue
            return written
        raise RuntimeError(f"post-mortem {postmortem_id} kept changing; the narrative will be written on retry")
