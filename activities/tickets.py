"""Steps for action items: open one ticket per item, exactly once; keep each item's status in step
with its ticket; and the follow-up checks (overdue, stalled, and at the end whether the fix worked).

Which side wins at a follow-up sync (postmortem.store.action_items.which_side): the ticket's state only
when it moved since the two last agreed and the item did not; an item changed here since its last
successful push (that push failed: a problem on the report) keeps its status and is pushed again.

Exactly once: every ticket carries a marker derived from the post-mortem and item ids, and the
tracker is searched for it before creating, so a worker killed between "created upstream" and
"recorded here" finds the first ticket instead of making a second.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from statistics import mean

from pydantic import AwareDatetime, BaseModel, Field
from temporalio import activity

from postmortem.activities.clients import OutsideClients
from postmortem.activities.upstream import activity_error
from postmortem.config import HttpSettings, ServerSettings, TicketsSettings, reveal
from postmortem.integrations.github_issues import GitHubIssuesClient
from postmortem.integrations.http_errors import UpstreamError
from postmortem.integrations.jira import JiraClient
from postmortem.integrations.linear import LinearClient
from postmortem.integrations.tickets import Ticket, TicketChange, TicketClient, TicketRequest
from postmortem.models import TICKET_STATUS, ActionItem, ActionItemStatus, Postmortem, TicketState
from postmortem.review import signed_links
from postmortem.store.action_items import Side
from postmortem.store.errors import NotFound
from postmortem.store.similarity import Match
from postmortem.store.store import Store

STALLED_AFTER = timedelta(days=14)
# How long a retried create waits for Jira's search to show an issue an earlier attempt may have made
# (Atlassian: most writes show within seconds).
JIRA_SETTLE = 30.0
# Related reports the 90-day verdict looks at (recurrences after publishing, and those before).
RECURRENCE_LIMIT = 200


class TicketsInput(BaseModel):
    postmortem_id: str
    tracker: str | None
    accounts: dict[str, str] = Field(default_factory=dict, description="owner (casefolded) → tracker account")
    now: AwareDatetime


class TicketsResult(BaseModel):
    created: list[str] = Field(default_factory=list)
    found: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list, description="items that followed their ticket (sync)")
    pushed: list[str] = Field(default_factory=list, description="tickets told the item's newer change (sync)")
    detail: str | None = None


class PushTicketInput(BaseModel):
    """An action item changed here (status, owner or due date): its ticket is told."""

    postmortem_id: str
    item_id: str
    accounts: dict[str, str] = Field(default_factory=dict, description="owner (casefolded) → tracker account")


class PushTicketResult(BaseModel):
    ticket: str | None = None
    changed: list[str] = Field(default_factory=list, description="what the ticket had to change")
    detail: str | None = None


# An action item's status as a ticket state (the inverse of postmortem.models.TICKET_STATUS).
ITEM_STATE: dict[ActionItemStatus, TicketState] = {status: state for state, status in TICKET_STATUS.items()}


class FollowUpCheckInput(BaseModel):
    postmortem_id: str
    day: int
    published_at: AwareDatetime
    final: bool
    now: AwareDatetime


class FollowUpCheck(BaseModel):
    day: int
    completed: int
    open: int
    overdue: list[str]
    stalled: list[str]
    owners_to_remind: list[str]
    verdict: dict[str, object] | None = None


def marker_for(postmortem_id: str, item_id: str) -> str:
    """Short, label-safe and deterministic: the same item always looks for the same ticket."""
    digest = hashlib.sha256(f"{postmortem_id}\n{item_id}".encode()).hexdigest()
    return f"pm-{digest[:10]}-item-{item_id[:12]}"


class TicketActivities:
    """`clients` are the worker's shared ones (`OutsideClients`); without them this object builds its
    own, once, for the trackers these settings configure (closed by `aclose`)."""

    def __init__(
        self,
        store: Store,
        *,
        tickets: TicketsSettings | None = None,
        server: ServerSettings | None = None,
        http: HttpSettings | None = None,
        clients: OutsideClients | None = None,
    ) -> None:
        self._store = store
        self._trackers = tickets or TicketsSettings()
        self._public_url = (server or ServerSettings()).resolved_public_url
        self._owned = clients is None
        self._clients = clients or OutsideClients.configured(tickets=self._trackers, http=http)
        self._ticket_clients: dict[str, TicketClient | None] = {}

    async def aclose(self) -> None:
        """Close the clients this object built itself (the worker closes its shared ones)."""
        if self._owned:
            await self._clients.aclose()

    def client(self, tracker: str) -> TicketClient | None:
        """The tracker's client (built on first use, then kept), None when it is not configured."""
        if tracker not in self._ticket_clients:
            self._ticket_clients[tracker] = self._build_client(tracker)
        return self._ticket_clients[tracker]

    def _build_client(self, tracker: str) -> TicketClient | None:
        jira, github, linear = self._trackers.jira, self._trackers.github, self._trackers.linear
        http = self._clients.tracker(tracker)
        if http is None:
            return None
        if tracker == "jira" and jira.url and (token := reveal(jira.api_token)) and jira.project:
            return JiraClient(jira.url, jira.email or "", token, jira.project, http)
        if tracker == "github" and (token := reveal(github.token)) and github.repo:
            return GitHubIssuesClient(github.api_url, token, github.repo, http, label=self._trackers.label)
        if tracker == "linear" and (key := reveal(linear.api_key)) and linear.team_id:
            return LinearClient(linear.api_url, key, linear.team_id, http)
        return None

    def _request(self, pm: Postmortem, item: ActionItem, accounts: dict[str, str]) -> TicketRequest:
        account = accounts.get((item.owner or "").casefold())
        owner_line = f"Owner: {item.owner}" + ("" if account or not item.owner else " (no tracker account mapped)")
        description = "\n\n".join(
            part
            for part in (
                item.description,
                owner_line if item.owner else "",
                f"From the post-mortem “{pm.title}”: {signed_links.page_url(self._public_url, pm.id)}",
            )
            if part
        )
        return TicketRequest(
            marker=marker_for(pm.id, item.id),
            title=item.description.splitlines()[0][:250],
            description=description,
            due_date=item.due_date,
            priority=item.priority.value,
            assignee=account,
            labels=(self._trackers.label,),
        )

    @activity.defn(name="open_tickets")
    async def open_tickets(self, input: TicketsInput) -> TicketsResult:
        pm = await self._store.postmortems.get(input.postmortem_id)
        todo = [item for item in pm.action_items if not item.ticket_key]
        if not todo:
            return TicketsResult()
        client = self.client(input.tracker or "")
        if client is None:
            return TicketsResult(detail=f"no tracker configured for this team ({input.tracker or 'none'})")
        result = TicketsResult()
        for item in todo:
            request = self._request(pm, item, input.accounts)
            try:
                ticket = await self._find(client, request.marker)
                if ticket is None:
                    ticket = await client.create(request)
                    result.created.append(ticket.key)
                else:
                    result.found.append(ticket.key)
            except UpstreamError as exc:
                raise activity_error(exc, "TrackerError") from exc
            await self._store.postmortems.set_ticket(
                pm.id, item.id, input.tracker or "", ticket.key, ticket.url, input.now, state=ticket.state
            )
            activity.heartbeat(item.id)
        return result

    async def _find(self, client: TicketClient, marker: str) -> Ticket | None:
        """`find` before `create`. On a retry an earlier attempt may have created the ticket unheard; Jira's
        search lags behind its writes, so a retry keeps asking for a while (`JIRA_SETTLE`) first."""
        if isinstance(client, JiraClient) and activity.in_activity() and activity.info().attempt > 1:
            return await client.find(marker, settle=JIRA_SETTLE)
        return await client.find(marker)

    @activity.defn(name="push_ticket")
    async def push_ticket(self, input: PushTicketInput) -> PushTicketResult:
        """The item as it is NOW (not as it was when it changed) onto its ticket. Idempotent: the client
        reads the ticket and writes only what differs, so a retry, a second push, or a push of a
        change that came from the ticket itself (its webhook) writes nothing — no ping-pong."""
        pm = await self._store.postmortems.get(input.postmortem_id)
        item = next((i for i in pm.action_items if i.id == input.item_id), None)
        if item is None or not item.ticket_key or not item.ticket_tracker:
            return PushTicketResult(detail="the item has no ticket (or was deleted)")
        client = self.client(item.ticket_tracker)
        if client is None:
            return PushTicketResult(ticket=item.ticket_key, detail=f"{item.ticket_tracker} is not configured")
        try:
            changed = await self._push(client, pm.id, item, item.ticket_key, input.accounts)
        except UpstreamError as exc:
            raise activity_error(exc, "TrackerError") from exc
        return PushTicketResult(ticket=item.ticket_key, changed=changed)

    async def _push(
        self, client: TicketClient, postmortem_id: str, item: ActionItem, key: str, accounts: dict[str, str]
    ) -> list[str]:
        """Make the ticket say what `item` says, then record what both agree on: the ticket's state read
        back (a tracker may show it its own way: GitHub has no "in progress") and the status pushed."""
        account = accounts.get((item.owner or "").casefold())
        change = TicketChange(
            state=ITEM_STATE[item.status],
            assignee=account,
            due_date=item.due_date,
            assign=account is not None or not item.owner,  # an owner without an account: keep the ticket's
        )
        changed = await client.update(key, change)
        ticket = await client.status(key)
        await self._store.postmortems.agree(postmortem_id, item.id, ticket.state, item.status)
        return changed

    @activity.defn(name="sync_tickets")
    async def sync_tickets(self, input: TicketsInput) -> TicketsResult:
        pm = await self._store.postmortems.get(input.postmortem_id)
        result = TicketsResult()
        for item in pm.action_items:
            if not item.ticket_key or not item.ticket_tracker:
                continue
            client = self.client(item.ticket_tracker)
            if client is None:
                continue
            try:
                ticket = await client.status(item.ticket_key)
                side = await self._store.postmortems.follow_ticket(pm.id, item.id, ticket.state, input.now)
                if side == Side.OURS:  # changed here since its last push: the ticket hears it again
                    current, _ = await self._store.postmortems.get_action_item(pm.id, item.id)
                    await self._push(client, pm.id, current, item.ticket_key, input.accounts)
                    result.pushed.append(item.ticket_key)
            except UpstreamError as exc:
                raise activity_error(exc, "TrackerError") from exc
            except NotFound:  # deleted while we asked its ticket
                continue
            if side == Side.TICKET:
                result.changed.append(item.ticket_key)
        return result

    @activity.defn(name="follow_up_check")
    async def follow_up_check(self, input: FollowUpCheckInput) -> FollowUpCheck:
        pm = await self._store.postmortems.get(input.postmortem_id)
        today = input.now.date()
        open_items = [i for i in pm.action_items if i.status in (ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS)]
        overdue = [i for i in open_items if i.due_date and i.due_date < today]
        stalled = [i for i in open_items if input.now - i.updated_at > STALLED_AFTER and i not in overdue]
        check = FollowUpCheck(
            day=input.day,
            completed=sum(i.status == ActionItemStatus.COMPLETED for i in pm.action_items),
            open=len(open_items),
            overdue=[i.description for i in overdue],
            stalled=[i.description for i in stalled],
            owners_to_remind=sorted({i.owner for i in overdue + stalled if i.owner}),
        )
        if input.final:
            check.verdict = await self._verdict(pm, input.published_at, input.now)
        await self._store.follow_ups.record(pm.id, input.day, check.model_dump(mode="json", exclude={"day"}), input.now)
        return check

    async def _verdict(self, pm: Postmortem, published_at: datetime, now: datetime) -> dict[str, object]:
        """Did the fix work? Recurrence (similar reports since publishing, ranked by the store's full-text
        search, that share a service or the cause category), and detection/resolution times before and after."""
        services = set(pm.services)

        def related(match: Match) -> bool:
            same_cause = pm.cause_category is not None and match.cause_category == pm.cause_category
            return bool(services & set(match.services)) or same_cause

        # The same similarity as the draft's "have we seen this before?", over every report.
        found = await self._store.similarity.find(pm, limit=RECURRENCE_LIMIT, readers_only=False)
        ids = [match.id for match in found if related(match)]
        others = [await self._store.postmortems.get(found_id) for found_id in ids]
        after = [p for p in others if p.created_at > published_at]
        before = [p for p in others if p.created_at <= published_at] + [pm]

        def average(items: list[Postmortem], field: str) -> float | None:
            values = [getattr(p.metrics, field) for p in items if getattr(p.metrics, field) is not None]
            return round(mean(values), 1) if values else None

        recurred = bool(after)
        return {
            "worked": not recurred,
            "recurrences": [p.id for p in after],
            "services": sorted(services),
            "cause_category": pm.cause_category.value if pm.cause_category else None,
            "time_to_detect_seconds": {
                "before": average(before, "time_to_detect_seconds"),
                "after": average(after, "time_to_detect_seconds"),
            },
            "time_to_resolve_seconds": {
                "before": average(before, "time_to_resolve_seconds"),
                "after": average(after, "time_to_resolve_seconds"),
            },
            "judged_on": now.date().isoformat(),
        }
