"""The Temporal worker: our workflow and the activities, wired to the store, teams file and sources."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from postmortem.activities.draft import DraftActivities
from postmortem.activities.gather import GatherActivities, GatherConfig
from postmortem.activities.link import LinkActivities
from postmortem.activities.meeting import MeetingActivities, MeetingConfig
from postmortem.activities.refresh import RefreshActivities
from postmortem.activities.review import NotifyConfig, ReviewActivities
from postmortem.activities.team import TeamActivities
from postmortem.activities.tickets import TicketActivities, TicketsConfig
from postmortem.app.settings import Settings
from postmortem.incident.teams import TeamsConfig
from postmortem.store.store import Store
from postmortem.workflows.follow_up_workflow import FollowUpWorkflow
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

WORKFLOWS = [PostmortemWorkflow, FollowUpWorkflow]


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


def meeting_config(settings: Settings) -> MeetingConfig:
    return MeetingConfig(
        public_url=settings.resolved_public_url,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_username=settings.smtp_username,
        smtp_password=settings.smtp_password,
        smtp_starttls=settings.smtp_starttls,
        smtp_from=settings.smtp_from,
        caldav_url=settings.caldav_url,
        caldav_username=settings.caldav_username,
        caldav_password=settings.caldav_password,
        video_url_template=settings.video_url_template,
        http_timeout_seconds=settings.http_timeout_seconds,
    )


def tickets_config(settings: Settings) -> TicketsConfig:
    return TicketsConfig(
        public_url=settings.resolved_public_url,
        jira_url=settings.jira_url,
        jira_email=settings.jira_email,
        jira_api_token=settings.jira_api_token,
        jira_project=settings.jira_project,
        github_api_url=settings.github_api_url,
        github_token=settings.github_token,
        github_repo=settings.github_repo,
        linear_api_url=settings.linear_api_url,
        linear_api_key=settings.linear_api_key,
        linear_team_id=settings.linear_team_id,
        http_timeout_seconds=settings.http_timeout_seconds,
    )


def notify_config(settings: Settings) -> NotifyConfig:
    return NotifyConfig(
        slack_api_url=settings.slack_api_url,
        slack_bot_token=settings.slack_bot_token,
        redact_patterns=settings.public_redact_patterns,
    )


def build_worker(
    client: Client,
    *,
    task_queue: str,
    store: Store,
    teams: TeamsConfig,
    gather: GatherConfig | None = None,
    meeting: MeetingConfig | None = None,
    notify: NotifyConfig | None = None,
    tickets: TicketsConfig | None = None,
) -> Worker:
    gatherers = GatherActivities(store.evidence, gather or GatherConfig())
    meetings = MeetingActivities(store.meetings, meeting or MeetingConfig())
    review = ReviewActivities(store, meeting or MeetingConfig(), notify or NotifyConfig())
    links = LinkActivities(store, gather or GatherConfig())
    trackers = TicketActivities(store, tickets or TicketsConfig())
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
            RefreshActivities(store.postmortems, store.evidence, store.templates).refresh_report,
            meetings.plan_meeting,
            meetings.revise_meeting,
            meetings.send_invite,
            review.record_review,
            review.publish_report,
            review.notify,
            links.link_incident,
            links.refresh_incident,
            trackers.open_tickets,
            trackers.sync_tickets,
            trackers.follow_up_check,
        ],
    )
