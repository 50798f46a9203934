"""Deterministic names: the same incident always maps to the same post-mortem and workflow."""

from __future__ import annotations

import re

from temporalio.common import SearchAttributeKey

STATUS_ATTRIBUTE = SearchAttributeKey.for_keyword("PostmortemStatus")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,149}$")


def is_safe_incident_id(incident_id: str) -> bool:
    return bool(_SAFE_ID.match(incident_id))


def postmortem_id_for(source: str, incident_id: str) -> str:
    return f"{source}-{incident_id}"


def workflow_id_for(postmortem_id: str) -> str:
    return f"postmortem-{postmortem_id}"


def follow_up_id_for(postmortem_id: str) -> str:
    """The FollowUpWorkflow of a published report (a child that outlives its parent's run)."""
    return f"followup-{postmortem_id}"
