"""Step: draft the report from its template and the gathered evidence, and store it exactly once.

A retry (or a second workflow run for the same incident) finds the stored report and returns it
untouched, so nobody's edits are overwritten by a redraft.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from postmortem.evidence.models import EvidenceSource, GatherState, SourceStatus
from postmortem.evidence.timeline import from_incident
from postmortem.incident.teams import TeamSettings
from postmortem.meeting.models import Attendee
from postmortem.models import Incident, PolicyDecision, PolicyOutcome, Status, TemplateVariant
from postmortem.report.drafting import draft_report
from postmortem.report.redraft import unfinished as unfinished_sources
from postmortem.store.evidence import EvidenceStore
from postmortem.store.inbox import InboxStore
from postmortem.store.postmortems import NewPostmortem, PostmortemStore
from postmortem.store.similarity import SimilarityStore


class DraftPostmortemInput(BaseModel):
    postmortem_id: str
    workflow_id: str
    incident: Incident
    team: TeamSettings
    decision: PolicyDecision
    now: AwareDatetime
    still_gathering: list[EvidenceSource] = Field(default_factory=list, description="sources past the deadline")
    delivery_id: str | None = Field(default=None, description="the inbox entry holding the incident's raw payload")
    not_configured: dict[str, str] = Field(
        default_factory=dict, description="sources not gathered, for want of settings (source → which)"
    )


class DraftPostmortemResult(BaseModel):
    postmortem_id: str
    status: Status
    created: bool
    # Everyone who acted and has an email (the report's responders): the review meeting's attendees.
    # Empty in histories from before it, where the team's responders (the incident's own) were used.
    responders: list[Attendee] = Field(default_factory=list)


class DraftActivities:
    def __init__(
        self,
        store: PostmortemStore,
        evidence: EvidenceStore,
        inbox: InboxStore | None = None,
        similarity: SimilarityStore | None = None,
    ) -> None:
        """`similarity`: the draft lists its similar past reports ("have we seen this before?")."""
        self._store = store
        self._evidence = evidence
        self._inbox = inbox
        self._similarity = similarity

    @activity.defn(name="draft_postmortem")
    async def draft_postmortem(self, input: DraftPostmortemInput) -> DraftPostmortemResult:
        skipped = input.decision.outcome == PolicyOutcome.SKIP
        # The delivery is kept with the report as evidence; relayed inputs leave it in the inbox.
        incident = await self._inbox.with_raw(input.incident, input.delivery_id) if self._inbox else input.incident
        variant = TemplateVariant.LIGHTWEIGHT if skipped else input.team.template
        # The webhook's own facts are evidence too, and the floor when no source API is configured; the
        # sources not scheduled for want of settings are recorded as their gathers would have said.
        not_read = [
            SourceStatus(
                source=EvidenceSource(source),
                incident_id=input.incident.id,
                state=GatherState.NOT_CONFIGURED,
                entries=0,
                detail=why,
            )
            for source, why in input.not_configured.items()
        ]
        statuses, timeline = await self._evidence.draft_evidence(
            input.postmortem_id, from_incident(input.incident), not_read, input.now
        )
        unfinished = unfinished_sources(statuses)
        unfinished += [
            SourceStatus(source=source, incident_id=input.incident.id, state=GatherState.PENDING)
            for source in input.still_gathering
            if not any(status.source == source for status in unfinished)
        ]
        try:
            draft = draft_report(
                [input.incident],
                decision=input.decision,
                language=input.team.language,
                variant=variant,
                zone=input.team.timezone,
                now=input.now,
                timeline=timeline,
                unavailable=unfinished,
                people=input.team.people,
            )
        except ValueError as exc:  # a broken template will not fix itself on retry
            raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from exc
        stored, created = await self._store.create_if_absent(
            NewPostmortem(
                id=input.postmortem_id,
                workflow_id=input.workflow_id,
                title=draft.title,
                status=Status.SKIPPED if skipped else Status.DRAFT,
                team=input.team.team,
                language=draft.language,
                variant=draft.variant,
                timezone=input.team.timezone,
                decision=input.decision,
                sections=draft.sections,
                metrics=draft.metrics,
                incident=incident,
                created_at=input.now,
            )
        )
        if self._similarity is not None and stored.status == Status.DRAFT and stored.id == input.postmortem_id:
            await self._similarity.link(stored)  # again on a retry: the same ranking, written once more
        responders = [Attendee(email=r.email, name=r.name) for r in stored.metrics.people if r.email]
        return DraftPostmortemResult(
            postmortem_id=stored.id, status=stored.status, created=created, responders=responders
        )
