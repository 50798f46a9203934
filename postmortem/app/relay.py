"""The relay: hands the inbox's deliveries to Temporal, in every process that runs the API.

The webhook only commits a delivery to the inbox (postmortem.store.inbox) and answers; this loop
starts the report's workflow (or signals the report an incident is linked to) for each entry, in
arrival order per incident, and records the outcome. It is safe with any number of processes:
entries are leased, so each is handed over by one relay at a time, and a lease that a dead process
held runs out by itself. Handing an entry over twice (a relay died after Temporal took it, before
it was marked done) changes nothing: the workflow id is the incident's, started with USE_EXISTING,
and the signal's refresh is idempotent.

While Temporal is unavailable an entry is released with a growing delay (doubled per attempt, up
to a maximum) and retried forever; meanwhile the relay tries one delivery at a time (the oldest
due), with the same growing delay, and goes back to full batches as soon as one gets through.
An entry that can never succeed — its stored delivery no longer reads, its incident id is one we
refuse, Temporal refuses the request itself, or the linked report's workflow has finished — is
marked `failed` with the reason and kept for people to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from postmortem.app.gateway import TemporalGateway, TemporalRefused, TemporalUnavailable, WorkflowGone
from postmortem.app.logs import report_context
from postmortem.app.tracing import TRACE_KEY, continued
from postmortem.config import InboxSettings, TemporalSettings
from postmortem.models import IncidentEvent
from postmortem.store.inbox import InboxEntry, InboxState, Settlement, stored_event
from postmortem.store.store import Store
from postmortem.workflows.identity import is_safe_incident_id, postmortem_id_for
from postmortem.workflows.inputs import IncidentDelivery
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

log = logging.getLogger("postmortem.relay")

PRUNE_EVERY_SECONDS = 60.0
LANES = 2
GATHER_ARRIVALS_SECONDS = 0.02
AWAY = "Temporal unavailable: "  # how an entry's last error starts when Temporal did not answer


def retry_delay(attempts: int, settings: InboxSettings) -> float:
    """Seconds until the next try after `attempts` tries (the claim counts one): the initial delay,
    doubled per try, never above the maximum."""
    exponent = min(max(attempts - 1, 0), 30)
    return min(settings.retry_max_seconds, settings.retry_initial_seconds * 2**exponent)


def _incident_of(entry: InboxEntry) -> tuple[str, str]:
    """(source, incident id) from the incident key `<source>:<incident id>`."""
    source, _, incident_id = entry.incident_key.partition(":")
    return source, incident_id


def _now() -> datetime:
    return datetime.now(UTC)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 500 else text[:500] + " …"


class Relay:
    def __init__(
        self,
        store: Store,
        gateway: TemporalGateway,
        settings: InboxSettings | None = None,
        *,
        owner: str | None = None,
        history_threshold: int | None = None,
    ) -> None:
        """`history_threshold` (POSTMORTEM_TEMPORAL_HISTORY_THRESHOLD) goes into each report's workflow input."""
        self._store = store
        self._gateway = gateway
        self._settings = settings or InboxSettings()
        self._history_threshold = history_threshold or TemporalSettings().history_threshold
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._next_prune = 0.0
        self._temporal_away = False
        self._probes = 0  # failed probes since Temporal went away

    async def run(self) -> None:
        """Until cancelled: relay what is due, then wait for a commit in this process or the next poll.

        Two lanes, each claiming half a batch: while one waits for Temporal the other claims or
        settles, so the database round trips do not stall the hand-over (measured on a busy 2-CPU
        machine: one lane drained at 0.6–0.8 of bare `start_workflow` calls at the same concurrency,
        two at 0.7–0.9).
        """
        try:
            await asyncio.gather(*(self._lane(max(1, self._settings.batch_size // LANES)) for _ in range(LANES)))
        finally:
            # Stopping cleanly: give our leases back so another process need not wait for them.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.inbox.release(self.owner))

    async def _lane(self, batch: int) -> None:
        inbox = self._store.inbox
        while True:
            inbox.arrived.clear()
            relayed = 0
            # While Temporal is away, one delivery at a time probes whether it is back (with the same
            # growing delay), instead of every arriving delivery being tried and put back: acks would
            # wait behind that churn of inbox transactions, and Temporal gains nothing from it.
            limit = 1 if self._temporal_away else batch
            try:
                relayed = await self.relay_due(limit)
                await self._prune_when_due()
            except Exception:  # the database away: log, wait a poll, try again; never stop relaying
                log.exception("the inbox relay could not read the inbox; retrying")
            if self._temporal_away:
                await asyncio.sleep(retry_delay(self._probes, self._settings))
                continue
            if relayed >= limit:
                continue  # more may be due right now
            try:
                await asyncio.wait_for(inbox.arrived.wait(), timeout=self._settings.poll_seconds)
            except TimeoutError:
                continue
            # Woken by a commit: let the deliveries arriving right behind it join the same claim, so a
            # burst costs a few inbox transactions, not two per delivery (each one an ack waits behind).
            await asyncio.sleep(GATHER_ARRIVALS_SECONDS)

    async def relay_due(self, limit: int | None = None) -> int:
        """Claim due entries (up to `limit`, by default a batch), hand them over concurrently, settle them;
        how many were claimed."""
        lease = timedelta(seconds=self._settings.lease_seconds)
        claimed = await self._store.inbox.claim(self.owner, _now(), lease, limit or self._settings.batch_size)
        if not claimed:
            return 0
        owners = await self._store.inbox.owners_of([_incident_of(entry) for entry in claimed])
        verdicts = await asyncio.gather(*(self._relay(entry, owners) for entry in claimed))
        await self._store.inbox.settle(self.owner, verdicts, _now())
        unavailable = [verdict.error for verdict in verdicts if verdict.error and verdict.error.startswith(AWAY)]
        self._note_temporal(bool(unavailable) and not any(v.state == InboxState.DONE for v in verdicts), unavailable)
        return len(claimed)

    async def _relay(self, entry: InboxEntry, owners: dict[tuple[str, str], tuple[str, str]]) -> Settlement:
        try:
            event = stored_event(entry.delivery)
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            return Settlement.failed(entry.id, f"the stored delivery no longer reads as an incident event: {exc}")
        if not is_safe_incident_id(event.incident.id):
            return Settlement.failed(entry.id, f"incident id {event.incident.id!r} has characters we do not accept")
        owner = owners.get((event.incident.source.value, event.incident.id))
        own_id = postmortem_id_for(event.incident.source.value, event.incident.id)
        # Every line logged about this hand-over carries the report's ids (gather copies the context per task).
        with report_context(
            postmortem_id=owner[0] if owner else own_id,
            incident_id=event.incident.id,
            workflow_id=owner[1] if owner else None,
        ):
            with continued(entry.delivery.get(TRACE_KEY)):  # the webhook's trace, when it was traced
                return await self._settle(entry, event, owner)

    async def _settle(self, entry: InboxEntry, event: IncidentEvent, owner: tuple[str, str] | None) -> Settlement:
        try:
            result = await self._hand_over(entry, event, owner)
            log.info("inbox entry %s handed to Temporal: %s %s", entry.id, result["outcome"], result["workflow_id"])
            return Settlement.done(entry.id, result)
        except TemporalUnavailable as exc:
            return self._retry(entry, f"{AWAY}{_short(exc)}")
        except TemporalRefused as exc:
            return Settlement.failed(entry.id, _short(exc))
        except WorkflowGone as exc:
            return Settlement.failed(
                entry.id, f"the linked report's workflow has finished; the incident update was not applied: {exc}"
            )
        except Exception as exc:  # not known to be permanent: keep it, and keep trying
            log.exception("relaying inbox entry %s failed; retrying", entry.id)
            return self._retry(entry, f"{type(exc).__name__}: {_short(exc)}")

    async def _hand_over(
        self, entry: InboxEntry, event: IncidentEvent, owner: tuple[str, str] | None
    ) -> dict[str, Any]:
        """Start the incident's report, or signal the report it is linked to (`owner`: its id and
        workflow id, looked up when the entry was claimed); what Temporal answered."""
        incident = event.incident
        postmortem_id = postmortem_id_for(incident.source.value, incident.id)
        delivery_id = str(entry.id)
        if owner is not None and owner[0] != postmortem_id:
            linked_id, linked_workflow = owner
            delivered = IncidentDelivery(event=event, delivery_id=delivery_id)
            await self._gateway.signal(linked_workflow, PostmortemWorkflow.incident_delivered, delivered)
            return {"outcome": "linked", "postmortem_id": linked_id, "workflow_id": linked_workflow}
        workflow_id, outcome = await self._gateway.start_postmortem(
            postmortem_id, event, delivery_id, history_threshold=self._history_threshold
        )
        return {"outcome": outcome.value, "postmortem_id": postmortem_id, "workflow_id": workflow_id}

    def _retry(self, entry: InboxEntry, error: str) -> Settlement:
        delay = retry_delay(entry.attempts, self._settings)
        return Settlement.retry(entry.id, error, _now() + timedelta(seconds=delay))

    def _note_temporal(self, away: bool, errors: list[str]) -> None:
        """Whether Temporal is away (nothing of a batch got through, and it said so), logged once per
        change rather than once per delivery."""
        if away and not self._temporal_away:
            log.warning("Temporal is unavailable: deliveries wait in the inbox and are retried (%s)", errors[0])
        elif not away and self._temporal_away:
            log.info("Temporal answers again: the inbox is being relayed")
        self._probes = self._probes + 1 if away else 0
        self._temporal_away = away

    async def _prune_when_due(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        cutoff = _now() - timedelta(hours=self._settings.retention_hours)
        if pruned := await self._store.inbox.prune(cutoff):
            log.info(
                "pruned %d relayed deliveries older than %g h from the inbox", pruned, self._settings.retention_hours
            )
