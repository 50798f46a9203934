"""The Temporal worker: our workflow and the activities, wired to the store, teams file and sources."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from postmortem.activities.clients import OutsideClients, llm_configured
from postmortem.activities.draft import DraftActivities
from postmortem.activities.gather import GatherActivities
from postmortem.activities.link import LinkActivities
from postmortem.activities.meeting import MeetingActivities
from postmortem.activities.narrative import NarrativeActivities
from postmortem.activities.page_links import PageLinks
from postmortem.activities.problems import ProblemActivities
from postmortem.activities.refresh import RefreshActivities
from postmortem.activities.review import ReviewActivities
from postmortem.activities.team import TeamActivities
from postmortem.activities.tickets import TicketActivities
from postmortem.app.http_clients import outside_clients
from postmortem.app.settings import Settings
from postmortem.app.worker_telemetry import ActivityTelemetry
from postmortem.incident.teams import TeamsConfig
from postmortem.store.store import Store
from postmortem.workflows.follow_up_workflow import FollowUpWorkflow
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

WORKFLOWS = [PostmortemWorkflow, FollowUpWorkflow]


def build_worker(
    client: Client,
    *,
    task_queue: str,
    store: Store,
    teams: TeamsConfig,
    settings: Settings | None = None,
    clients: OutsideClients | None = None,
) -> Worker:
    """The activities get the settings sections they need (the environment's when `settings` is not given)
    and the worker's one client per outside system (`clients`: built here when not given)."""
    s = settings or Settings()
    clients = clients or outside_clients(s)
    gatherers = GatherActivities(
        store.evidence,
        pagerduty=s.pagerduty,
        opsgenie=s.opsgenie,
        jsm=s.jsm,
        slack=s.slack,
        alertmanager=s.alertmanager,
        http=s.http,
        clients=clients,
    )
    meetings = MeetingActivities(
        store.meetings,
        meeting=s.meeting,
        smtp=s.smtp,
        caldav=s.caldav,
        server=s.server,
        http=s.http,
        clients=clients,
        links=PageLinks(store, s.server, s.web),
    )
    review = ReviewActivities(
        store, smtp=s.smtp, slack=s.slack, report=s.report, server=s.server, http=s.http, web=s.web, clients=clients
    )
    links = LinkActivities(store, pagerduty=s.pagerduty, opsgenie=s.opsgenie, jsm=s.jsm, http=s.http, clients=clients)
    trackers = TicketActivities(store, tickets=s.tickets, server=s.server, http=s.http, clients=clients)
    problems = ProblemActivities(
        store, smtp=s.smtp, slack=s.slack, server=s.server, http=s.http, web=s.web, clients=clients
    )
    narratives = NarrativeActivities(
        store.postmortems, store.evidence, llm=s.llm, report=s.report, templates=store.templates, client=clients.llm
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        interceptors=[ActivityTelemetry()],
        # SIGTERM: stop polling, let running activities finish (then cancel them), so a rolling deploy
        # loses no attempt to a timeout; `postmortem dev`'s worker process stops the same way.
        graceful_shutdown_timeout=timedelta(
            seconds=s.server.worker_shutdown_seconds
        ),  # the report's ids on activity log lines; failures and problems counted
        activities=[
            TeamActivities(
                teams,
                narrative=llm_configured(s.llm),
                unreachable_sources=gatherers.unreachable(),
                invite_channels=meetings.invite_channels(),
            ).resolve_team,
            gatherers.gather_pagerduty,
            gatherers.gather_opsgenie,
            gatherers.gather_jsm,
            gatherers.gather_alertmanager,
            gatherers.gather_slack,
            DraftActivities(store.postmortems, store.evidence, store.inbox, store.similarity).draft_postmortem,
            RefreshActivities(store.postmortems, store.evidence, store.templates, store.similarity).refresh_report,
            narratives.draft_narrative,
            meetings.plan_meeting,
            meetings.revise_meeting,
            meetings.send_invite,
            review.record_review,
            review.publish_report,
            review.notify,
            review.notify_people,
            links.link_incident,
            links.refresh_incident,
            trackers.open_tickets,
            trackers.sync_tickets,
            trackers.push_ticket,
            trackers.follow_up_check,
            problems.record_problem,
            problems.set_problem_state,
        ],
    )
