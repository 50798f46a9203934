"""Ticket status pushed by the trackers: an action item follows its ticket without waiting for the
next follow-up check.

- GitHub `issues` events, signed: `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body>`.
- Linear `Issue` events, signed: `Linear-Signature: <hex HMAC-SHA256 of the raw body>`.
- Jira `jira:issue_updated` events: Jira Cloud webhooks from automation carry no signature we can
  rely on, so a shared token (`X-Postmortem-Token` or `?token=`), like Opsgenie.

What a tracker's state means for us is postmortem.models' mapping, the one the ticket clients use
when the sync asks: a pushed status and a polled one never disagree.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from postmortem.models import TicketState, github_ticket_state, jira_ticket_state, linear_ticket_state
from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.payload import obj, text


def verify_hmac(body: bytes, presented: str | None, secret: str | None, *, header: str, prefix: str = "") -> None:
    if not secret:
        raise WebhookRejected(503, f"tracker webhooks are not configured: no secret for {header}")
    if not presented:
        raise WebhookRejected(400, f"missing {header} header")
    expected = prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), presented.strip().lower().encode("utf-8", "replace")):
        raise WebhookRejected(401, f"no valid signature in {header} for this body")


def github_state(data: dict[str, Any]) -> tuple[str, TicketState] | None:
    """(ticket key, state) from an `issues` event, or None for events that change no status."""
    issue, repository = obj(data.get("issue")), obj(data.get("repository"))
    number, repo = issue.get("number"), text(repository.get("full_name"))
    if not isinstance(number, int) or not repo:
        raise WebhookRejected(422, "issues event without issue.number or repository.full_name")
    if data.get("action") not in ("closed", "reopened", "edited"):
        return None
    return f"{repo}#{number}", github_ticket_state(text(issue.get("state")), text(issue.get("state_reason")))


def jira_state(data: dict[str, Any]) -> tuple[str, TicketState] | None:
    """(issue key, state) from a `jira:issue_updated` event, or None when it carries no status category."""
    issue = obj(data.get("issue"))
    key = text(issue.get("key"))
    if not key:
        raise WebhookRejected(422, "Jira event without issue.key")
    fields = obj(issue.get("fields"))
    status = obj(fields.get("status"))
    category = text(obj(status.get("statusCategory")).get("key"))
    if category is None:
        return None
    return key, jira_ticket_state(category, text(obj(fields.get("resolution")).get("name")), text(status.get("name")))


def linear_state(data: dict[str, Any]) -> tuple[str, TicketState] | None:
    """(identifier, state) from an `Issue` event, or None for other events and states without a type."""
    if data.get("type") != "Issue":
        return None
    issue = obj(data.get("data"))
    key = text(issue.get("identifier"))
    kind = text(obj(issue.get("state")).get("type"))
    if not key:
        raise WebhookRejected(422, "Linear Issue event without data.identifier")
    if kind is None:
        return None
    return key, linear_ticket_state(kind)
