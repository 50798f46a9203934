"""Step: complete a drafted report once a late source has answered.

Only what nobody edited is rewritten (the Timeline section while unedited, and the key metrics);
the write names the version it read, so a person's concurrent edit wins and we simply retry.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio import activity

from postmortem.models import Status
from postmortem.report.redraft import redraft
from postmortem.store.evidence import EvidenceStore
from postmortem.store.postmortems import NotFound, PostmortemChanges, PostmortemStore, VersionConflict
from postmortem.store.similarity import SimilarityStore
from postmortem.store.templates import TemplateStore

REFRESHED_SECTIONS = {"timeline", "detection_response"}


class RefreshReportInput(BaseModel):
    postmortem_id: str
    keep_drafted: bool = False  # the model's sections stay: a narrative redraft follows (narrative-redraft)


class RefreshReportResult(BaseModel):
    updated: bool
    version: int | None = None


class RefreshActivities:
    def __init__(
        self,
        store: PostmortemStore,
        evidence: EvidenceStore,
        templates: TemplateStore | None = None,
        similarity: SimilarityStore | None = None,
    ) -> None:
        """`similarity`: late evidence (alerts) ranks the similar past reports again."""
        self._store = store
        self._evidence = evidence
        self._templates = templates
        self._similarity = similarity

    @activity.defn(name="refresh_report")
    async def refresh_report(self, input: RefreshReportInput) -> RefreshReportResult:
        for _ in range(5):
            try:
                pm = await self._store.get(input.postmortem_id)
            except NotFound:
                return RefreshReportResult(updated=False)  # deleted meanwhile: nothing to complete
            template = None
            if pm.template_name and self._templates is not None:
                with contextlib.suppress(NotFound):  # the team deleted it: refresh from the built-in one
                    template, _ = await self._templates.get(pm.template_name)
            timeline, statuses = await self._evidence.entries(pm.id), await self._evidence.statuses(pm.id)
            fresh = redraft(pm, timeline=timeline, statuses=statuses, template=template)
            replacements = {s.key: s for s in fresh.sections if s.key in REFRESHED_SECTIONS}
            sections = [
                replacements[s.key].model_copy(update={"title": s.title})
                if s.key in replacements and not s.edited and not (input.keep_drafted and s.drafted_by)
                else s
                for s in pm.sections
            ]
            try:
                updated = await self._store.update(
                    pm.id,
                    pm.version,
                    PostmortemChanges(sections=sections, metrics=fresh.metrics),
                    datetime.now(UTC),
                )
            except VersionConflict:
                continue  # someone saved in between: read again, keep their edit
            if self._similarity is not None and updated.status == Status.DRAFT:
                await self._similarity.link(updated)
            return RefreshReportResult(updated=True, version=updated.version)
        raise RuntimeError(f"post-mortem {input.postmortem_id} kept changing; the refresh will be retried")
