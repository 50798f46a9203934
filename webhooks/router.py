"""POST /webhooks/{source}: verify, parse, commit to the inbox, answer in milliseconds.

An incident event that passes its signature (or token) check is committed to the store's inbox and
answered 202 whatever Temporal's state; the relay (postmortem.app.relay) starts the workflow. The
workflow id is derived from the incident, so a duplicate or retried delivery lands on the same
workflow and never makes a second report. Alertmanager alerts and tracker events are written
straight to the store: they never involve Temporal, so they need no inbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from postmortem.api.deps import ServicesDep
from postmortem.api.errors import error
from postmortem.api.prometheus import counted
from postmortem.api.services import Services
from postmortem.app.logs import report_context
from postmortem.app.tracing import TRACE_KEY, current_trace
from postmortem.config import reveal
from postmortem.models import TICKET_STATUS, IncidentEvent, TicketState
from postmortem.store.errors import NotFound
from postmortem.store.inbox import InboxState, NewDelivery, Receipt, incident_delivery
from postmortem.webhooks.alertmanager import parse_alertmanager, verify_bearer
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.jsm import parse_jsm, verify_jsm_token
from postmortem.webhooks.opsgenie import TOKEN_HEADER, parse_opsgenie, verify_token
from postmortem.webhooks.pagerduty import parse_pagerduty
from postmortem.webhooks.pagerduty_signature import HEADER as SIGNATURE_HEADER
from postmortem.webhooks.pagerduty_signature import verify_signature
from postmortem.webhooks.payload import parse_json_object, read_body
from postmortem.webhooks.trackers import github_state, jira_state, linear_state, verify_hmac
from postmortem.workflows.identity import is_safe_incident_id, postmortem_id_for, workflow_id_for

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger("postmortem.webhooks")

ACCEPTED_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted: a post-mortem was queued (or started), or the event was acknowledged and ignored"},
    400: error(
        "missing or malformed signature header, or a body that is not UTF-8 JSON or nests deeper than "
        "POSTMORTEM_JSON_MAX_DEPTH"
    ),
    401: error("no valid signature or token"),
    413: error("a body over POSTMORTEM_WEBHOOK_MAX_BYTES (POSTMORTEM_ALERTMANAGER_MAX_BYTES for Alertmanager)"),
    422: error(
        "JSON that is not this source's webhook format, or text holding NUL or a lone surrogate; "
        "the message names the field"
    ),
    503: error("not configured, or the store is unavailable: the sender should retry"),
}


def _parsed(parse: Any, data: dict[str, Any]) -> Any:
    try:
        return parse(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise WebhookRejected(422, f"unexpected payload: {where}: {error['msg']}") from exc


# What the inbox keeps of a request's headers: enough to tell deliveries apart and check a signature
# again later; never a token (Opsgenie's and Jira's are secrets).
KEPT_HEADERS = ("content-type", "user-agent", "x-webhook-id", "x-webhook-subscription", SIGNATURE_HEADER.lower())
DELIVERY_ID_HEADER = "X-Webhook-Id"  # PagerDuty V3: the same on every retry of one delivery
MAX_KEY_LENGTH = 200


def _bounded(value: str | None) -> str | None:
    """A sender's id as a dedupe key of bounded size: a longer one is kept as its digest."""
    if value is None or len(value) <= MAX_KEY_LENGTH:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _delivery_id(header: str | None, index: int, count: int) -> str | None:
    """The delivery id of each event of a request (a V2 batch has several events, the header one id)."""
    if not header or not header.strip():
        return None
    return _bounded(header.strip() if count == 1 else f"{header.strip()}#{index}")


def _trace() -> dict[str, Any]:
    """The request's trace context, kept with the delivery so the relay's start of the workflow continues
    the webhook's trace (postmortem.app.tracing); nothing when tracing is off."""
    carrier = current_trace()
    return {TRACE_KEY: carrier} if carrier else {}


async def _answer(services: Services, event: IncidentEvent, receipt: Receipt) -> dict[str, Any]:
    """One post-mortem of the answer: what the relay recorded for this event, or where it is headed."""
    incident = event.incident
    postmortem_id = postmortem_id_for(incident.source.value, incident.id)
    workflow_id, outcome = workflow_id_for(postmortem_id), "queued"
    entry = receipt.entry
    if entry.result is not None:  # a duplicate of an entry already relayed: what Temporal answered then
        postmortem_id = entry.result.get("postmortem_id", postmortem_id)
        workflow_id = entry.result.get("workflow_id", workflow_id)
        outcome = entry.result.get("outcome", outcome)
    elif entry.state == InboxState.FAILED:
        outcome = "failed"
    else:
        owner = await services.store.postmortems.owner_of(incident.source.value, incident.id)
        if owner is not None and owner != postmortem_id:
            # Linked to another report: the relay signals that report's workflow; no second report.
            with contextlib.suppress(NotFound):  # deleted meanwhile: the incident gets its own report
                workflow_id = (await services.store.postmortems.get(owner)).workflow_id
                postmortem_id, outcome = owner, "linked"
    return {
        "postmortem_id": postmortem_id,
        "workflow_id": workflow_id,
        "outcome": outcome,
        "event_type": event.event_type,
        "event_id": event.event_id,
    }


async def _dispatch(
    services: Services, request: Request, body: bytes, deliveries: list[IncidentEvent | Ignored]
) -> JSONResponse:
    """Commit the incident events to the inbox in one transaction and answer 202: Temporal is never awaited.

    The relay (postmortem.app.relay) starts or signals the workflows afterwards, retrying while Temporal
    is away; a duplicate delivery (same event of the same incident, or the same `X-Webhook-Id`) is
    stored once and answered with its first entry's outcome.
    """
    events = [delivery for delivery in deliveries if isinstance(delivery, IncidentEvent)]
    ignored = [delivery.model_dump() for delivery in deliveries if isinstance(delivery, Ignored)]
    for event in events:
        if not is_safe_incident_id(event.incident.id):
            raise WebhookRejected(422, f"incident id {event.incident.id!r} has characters we do not accept")
    started = []
    if events:
        header = request.headers.get(DELIVERY_ID_HEADER)
        new = [
            NewDelivery(
                source=event.incident.source.value,
                event_id=_bounded(event.event_id),
                delivery_id=_delivery_id(header, index, len(events)),
                incident_key=f"{event.incident.source.value}:{event.incident.id}",
                delivery=incident_delivery(event) | _trace(),
                incident_raw=event.incident.raw or None,
            )
            for index, event in enumerate(events)
        ]
        headers = {name: value for name in KEPT_HEADERS if (value := request.headers.get(name)) is not None}
        try:
            receipts = await services.store.inbox.add(body, headers, new, datetime.now(UTC))
        except SQLAlchemyError as exc:  # the one answer that makes the sender keep the delivery
            raise WebhookRejected(503, f"the delivery could not be stored, retry later: {type(exc).__name__}") from exc
        for event, receipt in zip(events, receipts, strict=True):
            answer = await _answer(services, event, receipt)
            started.append(answer)
            with report_context(
                postmortem_id=answer["postmortem_id"], incident_id=event.incident.id, workflow_id=answer["workflow_id"]
            ):
                log.info(
                    "%s webhook %s: incident %s %s (inbox entry %s)",
                    event.incident.source.value,
                    event.event_type,
                    event.incident.id,
                    answer["outcome"],
                    receipt.entry.id,
                )
    status = "accepted" if started else "ignored"
    return JSONResponse({"status": status, "postmortems": started, "ignored": ignored}, status_code=202)


@router.post("/pagerduty", status_code=202, responses=ACCEPTED_RESPONSE)
@counted("pagerduty")
async def pagerduty_webhook(
    request: Request,
    services: ServicesDep,
    x_pagerduty_signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> JSONResponse:
    body = await read_body(request, services.settings.limits)
    secrets = [secret.get_secret_value() for secret in services.settings.pagerduty.webhook_secrets]
    verify_signature(body, x_pagerduty_signature, secrets)
    return await _dispatch(services, request, body, _parsed(parse_pagerduty, parse_json_object(body)))


@router.post("/opsgenie", status_code=202, responses=ACCEPTED_RESPONSE)
@counted("opsgenie")
async def opsgenie_webhook(
    request: Request,
    services: ServicesDep,
    x_postmortem_token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
    token: Annotated[str | None, Query(description="the shared token, when the sender cannot set headers")] = None,
) -> JSONResponse:
    verify_token(x_postmortem_token or token, reveal(services.settings.opsgenie.webhook_token))
    body = await read_body(request, services.settings.limits)
    return await _dispatch(services, request, body, [_parsed(parse_opsgenie, parse_json_object(body))])


@router.post("/jsm", status_code=202, responses=ACCEPTED_RESPONSE)
async def jsm_webhook(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
    x_postmortem_token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
) -> JSONResponse:
    """Jira Service Management Operations' Webhook integration (Opsgenie's alert-action JSON)."""
    verify_jsm_token(authorization, x_postmortem_token, reveal(services.settings.jsm.webhook_token))
    body = await read_body(request, services.settings.limits)
    return await _dispatch(services, request, body, [_parsed(parse_jsm, parse_json_object(body))])


@router.post("/alertmanager", status_code=202, responses=ACCEPTED_RESPONSE)
@counted("alertmanager")
async def alertmanager_webhook(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Stored straight away (no workflow): the gather step attaches them to incidents later."""
    verify_bearer(authorization, reveal(services.settings.alertmanager.webhook_token))
    body = await read_body(request, services.settings.limits, "alertmanager_max_bytes")
    alerts = parse_alertmanager(parse_json_object(body))
    stored = await services.store.evidence.record_alerts(alerts, datetime.now(UTC))
    return JSONResponse({"status": "stored", "alerts": stored}, status_code=202)


async def _ticket_pushed(services: Services, tracker: str, change: tuple[str, TicketState] | None) -> JSONResponse:
    if change is None:
        return JSONResponse({"status": "ignored", "reason": "the event changes no ticket status"}, status_code=202)
    key, state = change
    owner = await services.store.postmortems.item_for_ticket(tracker, key)
    if owner is None:
        return JSONResponse({"status": "ignored", "reason": f"no action item has ticket {key}"}, status_code=202)
    # A change on the ticket, as it happens: the last change, so the item follows it (and they agree).
    changed = await services.store.postmortems.sync_item_status(
        owner[0], owner[1], TICKET_STATUS[state], datetime.now(UTC), ticket=state
    )
    return JSONResponse(
        {
            "status": "synced" if changed else "unchanged",
            "postmortem_id": owner[0],
            "action_item": owner[1],
            "ticket": key,
            "state": state,
        },
        status_code=202,
    )


@router.post("/github", status_code=202, responses=ACCEPTED_RESPONSE)
@counted("github")
async def github_webhook(
    request: Request,
    services: ServicesDep,
    x_hub_signature_256: Annotated[str | None, Header(alias="X-Hub-Signature-256")] = None,
    x_github_event: Annotated[str | None, Header(alias="X-GitHub-Event")] = None,
) -> JSONResponse:
    body = await read_body(request, services.settings.limits)
    verify_hmac(
        body,
        x_hub_signature_256,
        reveal(services.settings.tickets.github.webhook_secret),
        header="X-Hub-Signature-256",
        prefix="sha256=",
    )
    if x_github_event not in (None, "issues"):
        return JSONResponse({"status": "ignored", "reason": f"event {x_github_event!r} is not used"}, status_code=202)
    return await _ticket_pushed(services, "github", github_state(parse_json_object(body)))


@router.post("/jira", status_code=202, responses=ACCEPTED_RESPONSE)
@counted("jira")
async def jira_webhook(
    request: Request,
    services: ServicesDep,
    x_postmortem_token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
    token: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    verify_token(
        x_postmortem_token or token,
        reveal(services.settings.tickets.jira.webhook_token),
        source="Jira",
        setting="POSTMORTEM_JIRA_WEBHOOK_TOKEN",
    )
    body = await read_body(request, services.settings.limits)
    return await _ticket_pushed(services, "jira", jira_state(parse_json_object(body)))


@router.post("/linear", status_code=202, responses=ACCEPTED_RESPONSE)
@counted("linear")
async def linear_webhook(
    request: Request,
    services: ServicesDep,
    linear_signature: Annotated[str | None, Header(alias="Linear-Signature")] = None,
) -> JSONResponse:
    body = await read_body(request, services.settings.limits)
    secret = reveal(services.settings.tickets.linear.webhook_secret)
    verify_hmac(body, linear_signature, secret, header="Linear-Signature")
    return await _ticket_pushed(services, "linear", linear_state(parse_json_object(body)))
