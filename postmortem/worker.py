"""The Temporal worker: our workflow and the activities, wired to the store, teams file and sources."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from postmortem.activities.draft import DraftActivities
from postmortem.activities.gather import GatherActivities, GatherConfig
from postmortem.activities.refresh import RefreshActivities
from postmortem.activities.team import TeamActivities
from postmortem.settings import Settings
from postmortem.store.store import Store
from postmortem.teams import TeamsConfig
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

WORKFLOWS = [PostmortemWorkflow]


def gather_config(settings: Settings) -> GatherConfig:
    return GatherConfig(
        pagerduty_api_url=settings.pagerduty_api_url,
        pagerduty_api_token=settings.pagerduty_api_token,
        opsgenie_api_url=settings.opsgenie_api_url,
        opsgenie_api_key=settings.opsgenie_api_key,
        slack_api_url=settings.slack_api_url,
        slack_bot_token=settings.slack_bot_token,
        alertmanager_service_labels=settings.alertmanager_service_labels,
        alertmanager_margin_minutes=settings.alertmanager_margin_minutes,
        http_timeout_seconds=settings.http_timeout_seconds,
    )


def build_worker(
    client: Client, *, task_queue: str, store: Store, teams: TeamsConfig, gather: GatherConfig | None = None
) -> Worker:
    gatherers = GatherActivities(store.evidence, gather or GatherConfig())
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
            TeamActivities(teams).resolve_team,
            gatherers.gather_pagerduty,
            gatherers.gather_opsgenie,
            gatherers.gather_alertmanager,
            gatherers.gather_slack,
            DraftActivities(store.postmortems, store.evidence).draft_postmortem,
            RefreshActivities(store.postmortems, store.evidence).refresh_report,
        ],
    )
