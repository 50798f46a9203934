"""Who may see a report: every token (organisation), its team's tokens (team), or only admins, its
author and its reviewers (private). Admins, the author and the reviewers always see it.

A pure rule so the API applies one definition everywhere; the API answers 404 to anyone else, as if
the report did not exist, so its existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from postmortem.models import Postmortem, Visibility
from postmortem.review.lifecycle import Review


@dataclass(frozen=True)
class Reader:
    """Who asks: an API token's name (a person's email), its team, and whether it is an admin's."""

    name: str
    team: str | None = None
    admin: bool = False


def may_see(reader: Reader, report: Postmortem, review: Review | None = None) -> bool:
    """Whether `reader` may see `report`.

    `review` only matters for a reader the report itself does not admit (a reviewer of a private
    report); pass None to decide without loading it, then ask again with it when that says False.
    """
    if reader.admin or report.visibility == Visibility.ORGANISATION or report.author == reader.name:
        return True
    if report.visibility == Visibility.TEAM and reader.team and reader.team == report.team:
        return True
    return review is not None and review.reviewer(reader.name) is not None
