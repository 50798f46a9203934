"""Who may see a report: organisation-wide, its team, or private (admins, author, reviewers).

A report a caller may not see answers 404, as if it did not exist, so its existence does not leak.
"""

from __future__ import annotations

from fastapi import HTTPException

from postmortem.api.services import Services
from postmortem.models import Postmortem, Visibility
from postmortem.store.postmortems import Viewer
from postmortem.store.tokens import Role, TokenInfo


def viewer(token: TokenInfo) -> Viewer:
    return Viewer(name=token.name, team=token.team, admin=token.role == Role.ADMIN)


async def visible_postmortem(services: Services, postmortem_id: str, token: TokenInfo) -> Postmortem:
    pm = await services.store.postmortems.get(postmortem_id)
    if token.role == Role.ADMIN or pm.visibility == Visibility.ORGANISATION or pm.author == token.name:
        return pm
    if pm.visibility == Visibility.TEAM and token.team and token.team == pm.team:
        return pm
    review = await services.store.review.get(postmortem_id)
    if review.reviewer(token.name) is not None:
        return pm
    raise HTTPException(404, f"no post-mortem {postmortem_id!r}")
