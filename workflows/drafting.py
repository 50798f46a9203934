"""A report's first steps: its team, the policy's decision, the evidence (every source at once, until
the team's deadline) and the draft written from what came in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import postmortem.workflows.gathering as gathering
    from postmortem.activities.draft import DraftActivities, DraftPostmortemInput, DraftPostmortemResult
    from postmortem.activities.narrative import DraftNarrativeInput, NarrativeActivities
    from postmortem.activities.team import ResolveTeamInput, TeamActivities
    from postmortem.incident.policy import decide
    from postmortem.incident.teams import TeamSettings
    from postmortem.models import PolicyOutcome
    from postmortem.workflows.inputs import PostmortemWorkflowInput
    from postmortem.workflows.options import NARRATIVE_OPTIONS, STEP_RETRY
    from postmortem.workflows.side_effects import SideEffects
    from postmortem.workflows.state import NarrativeStep

GATHER_PATCH = "gather-evidence"
# Fewer round trips per draft: the team is resolved, and Alertmanager's stored alerts read, as local
# activities; sources the worker cannot reach are not scheduled (the draft records them as not configured).
# A run with this patch has every patch of the first steps that came before it (gather-evidence,
# responders-attend, review-meeting, review-lifecycle) without asking: no marker and search-attribute
# upsert for each, and no `patched` right after a local activity, which does not replay when the
# worker task that ran the activity ended before the code after it ran (a query answered mid-task
# does that): the replay runs on in the same task and finds the marker missing from it.
LEAN_PATCH = "lean-draft"
RESOLVE_TIMEOUT = timedelta(seconds=30)
# The optional model drafts the narrative sections after the deterministic draft (when configured).
NARRATIVE_PATCH = "llm-narrative"
# After a refresh of the evidence the model writes its sections again (never an edited one).
REDRAFT_PATCH = "narrative-redraft"
# After a person's change of language or time zone redrafted the model's sections (the deterministic
# text now), the model writes them again in the new language (the `sections_redrafted` signal).
LANGUAGE_PATCH = "narrative-language"


@dataclass
class Drafted:
    result: DraftPostmortemResult
    team: TeamSettings
    done: gathering.Handles  # sources finished by the deadline (some may have failed for good)
    late: gathering.Handles  # sources still being gathered: the draft says so, a refresh follows
    lean: bool = False  # LEAN_PATCH: the patches older than it hold without being asked


async def draft(input: PostmortemWorkflowInput) -> Drafted:
    incident = input.event.incident
    lean = workflow.patched(LEAN_PATCH)
    resolve = ResolveTeamInput(incident=incident.summary())
    if lean:
        team = await workflow.execute_local_activity_method(
            TeamActivities.resolve_team, resolve, start_to_close_timeout=RESOLVE_TIMEOUT, retry_policy=STEP_RETRY
        )
    else:
        team = await workflow.execute_activity_method(
            TeamActivities.resolve_team, resolve, start_to_close_timeout=RESOLVE_TIMEOUT, retry_policy=STEP_RETRY
        )
    decision = decide([incident], team.policy)
    done: gathering.Handles = {}
    late: gathering.Handles = {}
    skipped: dict[str, str] = {}
    if decision.outcome != PolicyOutcome.SKIP and (lean or workflow.patched(GATHER_PATCH)):
        done, late = await gathering.gather(input.postmortem_id, incident.summary(), team, lean=lean)
        if lean:
            skipped = {source.value: why for source, why in gathering.unreachable(team).items()}
    result = await workflow.execute_activity_method(
        DraftActivities.draft_postmortem,
        DraftPostmortemInput(
            postmortem_id=input.postmortem_id,
            workflow_id=workflow.info().workflow_id,
            incident=incident,
            team=team,
            decision=decision,
            now=workflow.now(),
            still_gathering=list(late),
            delivery_id=input.delivery_id,
            not_configured=skipped,
        ),
        start_to_close_timeout=timedelta(minutes=2),
        retry_policy=STEP_RETRY,
    )
    return Drafted(result, team, done, late, lean)


def wants_narrative(drafted: Drafted) -> bool:
    """A fresh DRAFT of a team whose worker has a model configured (the patch is asked only then)."""
    result = drafted.result
    return result.created and result.status.value == "DRAFT" and drafted.team.narrative


async def narrate(postmortem_id: str, step: NarrativeStep, effects: SideEffects) -> None:
    """The model's cited narrative over the unedited sections; the deterministic draft stays when the
    model is away, and a failure for good is a problem of the report (its retry runs this again)."""
    request = DraftNarrativeInput(
        postmortem_id=postmortem_id,
        redact=step.redact,
        now=workflow.now(),
        redraft=step.redraft,
        sections=step.sections,
    )
    await effects.attempt(
        "narrative",
        "model, new language or zone" if step.sections else "model again" if step.redraft else "model",
        lambda: workflow.execute_activity_method(NarrativeActivities.draft_narrative, request, **NARRATIVE_OPTIONS),
        retry=step,
    )
