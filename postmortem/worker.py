"""The Temporal worker: our workflow and the activities, wired to the store and the teams file."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from postmortem.activities.draft import DraftActivities
from postmortem.activities.team import TeamActivities
from postmortem.store.store import Store
from postmortem.teams import TeamsConfig
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

WORKFLOWS = [PostmortemWorkflow]


def build_worker(client: Client, *, task_queue: str, store: Store, teams: TeamsConfig) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
            TeamActivities(teams).resolve_team,
            DraftActivities(store.postmortems).draft_postmortem,
        ],
    )
