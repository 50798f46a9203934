"""POST /webhooks/{source}: verify, parse, start the workflow, answer in milliseconds.

Nothing here writes to the store: the workflow id is derived from the incident, so a duplicate or
retried delivery lands on the same workflow and never makes a second report.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from postmortem.api.deps import ServicesDep
from postmortem.api.services import Services
from postmortem.config import reveal
from postmortem.models import TICKET_STATUS, IncidentEvent, TicketState
from postmortem.webhooks.alertmanager import parse_alertmanager, verify_bearer
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.ignored import Ignored
from postmortem.webhooks.opsgenie import TOKEN_HEADER, parse_opsgenie, verify_token
from postmortem.webhooks.pagerduty import parse_pagerduty
from postmortem.webhooks.pagerduty_signature import HEADER as SIGNATURE_HEADER
from postmortem.webhooks.pagerduty_signature import verify_signature
from postmortem.webhooks.payload import parse_json_object
from postmortem.webhooks.trackers import github_state, jira_state, linear_state, verify_hmac
from postmortem.workflows.identity import is_safe_incident_id, postmortem_id_for
from postmortem.workflows.postmortem_workflow import PostmortemWorkflow

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

ACCEPTED_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted: a post-mortem was started, or the event was acknowledged and ignored"},
    400: {"description": "missing or malformed signature header, or a body that is not JSON"},
    401: {"description": "no valid signature or token"},
    422: {"description": "JSON that is not this source's webhook format; the message names the field"},
    503: {"description": "not configured, or Temporal unavailable: the sender should retry"},
}


def _parsed(parse: Any, data: dict[str, Any]) -> Any:
    try:
        return parse(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise WebhookRejected(422, f"unexpected payload: {where}: {error['msg']}") from exc


async def _dispatch(services: Services, deliveries: list[IncidentEvent | Ignored]) -> JSONResponse:
    started, ignored = [], []
    for delivery in deliveries:
        if isinstance(delivery, Ignored):
            ignored.append(delivery.model_dump())
            continue
        incident = delivery.incident
        if not is_safe_incident_id(incident.id):
            raise WebhookRejected(422, f"incident id {incident.id!r} has characters we do not accept")
        postmortem_id = postmortem_id_for(incident.source.value, incident.id)
        owner = await services.store.postmortems.owner_of(incident.source.value, incident.id)
        if owner is not None and owner != postmortem_id:
            # Linked to another report: that report's workflow hears about it; no second report.
            linked = await services.store.postmortems.get(owner)
            await services.temporal.signal(linked.workflow_id, PostmortemWorkflow.incident_updated, delivery)
            started.append(
                {
                    "postmortem_id": owner,
                    "workflow_id": linked.workflow_id,
                    "outcome": "linked",
                    "event_type": delivery.event_type,
                    "event_id": delivery.event_id,
                }
            )
            continue
        workflow_id, outcome = await services.temporal.start_postmortem(postmortem_id, delivery)
        started.append(
            {
                "postmortem_id": postmortem_id,
                "workflow_id": workflow_id,
                "outcome": outcome.value,
                "event_type": delivery.event_type,
                "event_id": delivery.event_id,
            }
        )
    status = "accepted" if started else "ignored"
    return JSONResponse({"status": status, "postmortems": started, "ignored": ignored}, status_code=202)


@router.post("/pagerduty", status_code=202, responses=ACCEPTED_RESPONSE)
async def pagerduty_webhook(
    request: Request,
    services: ServicesDep,
    x_pagerduty_signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> JSONResponse:
    body = await request.body()
    secrets = [secret.get_secret_value() for secret in services.settings.pagerduty.webhook_secrets]
    verify_signature(body, x_pagerduty_signature, secrets)
    return await _dispatch(services, _parsed(parse_pagerduty, parse_json_object(body)))


@router.post("/opsgenie", status_code=202, responses=ACCEPTED_RESPONSE)
async def opsgenie_webhook(
    request: Request,
    services: ServicesDep,
    x_postmortem_token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
    token: Annotated[str | None, Query(description="the shared token, when the sender cannot set headers")] = None,
) -> JSONResponse:
    verify_token(x_postmortem_token or token, reveal(services.settings.opsgenie.webhook_token))
    body = await request.body()
    return await _dispatch(services, [_parsed(parse_opsgenie, parse_json_object(body))])


@router.post("/alertmanager", status_code=202, responses=ACCEPTED_RESPONSE)
async def alertmanager_webhook(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Stored straight away (no workflow): the gather step attaches them to incidents later."""
    verify_bearer(authorization, reveal(services.settings.alertmanager.webhook_token))
    alerts = parse_alertmanager(parse_json_object(await request.body()))
    stored = await services.store.evidence.record_alerts(alerts, datetime.now(UTC))
    return JSONResponse({"status": "stored", "alerts": stored}, status_code=202)


async def _ticket_pushed(services: Services, tracker: str, change: tuple[str, TicketState] | None) -> JSONResponse:
    if change is None:
        return JSONResponse({"status": "ignored", "reason": "the event changes no ticket status"}, status_code=202)
    key, state = change
    owner = await services.store.postmortems.item_for_ticket(tracker, key)
    if owner is None:
        return JSONResponse({"status": "ignored", "reason": f"no action item has ticket {key}"}, status_code=202)
    changed = await services.store.postmortems.sync_item_status(
        owner[0], owner[1], TICKET_STATUS[state], datetime.now(UTC)
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
async def github_webhook(
    request: Request,
    services: ServicesDep,
    x_hub_signature_256: Annotated[str | None, Header(alias="X-Hub-Signature-256")] = None,
    x_github_event: Annotated[str | None, Header(alias="X-GitHub-Event")] = None,
) -> JSONResponse:
    body = await request.body()
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
    return await _ticket_pushed(services, "jira", jira_state(parse_json_object(await request.body())))


@router.post("/linear", status_code=202, responses=ACCEPTED_RESPONSE)
async def linear_webhook(
    request: Request,
    services: ServicesDep,
    linear_signature: Annotated[str | None, Header(alias="Linear-Signature")] = None,
) -> JSONResponse:
    body = await request.body()
    secret = reveal(services.settings.tickets.linear.webhook_secret)
    verify_hmac(body, linear_signature, secret, header="Linear-Signature")
    return await _ticket_pushed(services, "linear", linear_state(parse_json_object(body)))
