"""What a route needs, as parameter types: the services, the caller (per role), the report the caller may see.

A route says `pm: VisibleReport` (or `EditableReport`, `AdminReport`) instead of checking by hand, so
no report route can forget the visibility rule; the route that takes both `token: Editor` and
`pm: EditableReport` authenticates once, as FastAPI solves each dependency once per request.
The order of refusals is: 401 (no valid token), 403 (role too low), 404 (unknown or hidden report).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from postmortem.api.services import Services, get_services
from postmortem.app.gateway import TemporalGateway
from postmortem.models import Postmortem
from postmortem.review.visibility import Reader, may_see
from postmortem.store.store import Store
from postmortem.store.tokens import Role, TokenInfo

ServicesDep = Annotated[Services, Depends(get_services)]


async def get_store(services: ServicesDep) -> Store:
    return services.store


async def get_gateway(services: ServicesDep) -> TemporalGateway:
    return services.temporal


StoreDep = Annotated[Store, Depends(get_store)]
GatewayDep = Annotated[TemporalGateway, Depends(get_gateway)]


# The caller ----------------------------------------------------------------------------------


async def _caller(request: Request, store: Store, role: Role) -> TokenInfo:
    """The bearer token's holder, if it has at least `role`."""
    header = request.headers.get("Authorization")
    if not header:
        raise HTTPException(
            401,
            "missing Authorization header: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, "malformed Authorization header: expected 'Bearer <token>'", headers={"WWW-Authenticate": "Bearer"}
        )
    info = await store.tokens.authenticate(token.strip())
    if info is None:
        raise HTTPException(401, "unknown or revoked API token", headers={"WWW-Authenticate": "Bearer"})
    if info.role.rank < role.rank:
        raise HTTPException(403, f"this action needs the {role.value} role; token {info.name!r} has {info.role.value}")
    return info


async def viewer_caller(request: Request, store: StoreDep) -> TokenInfo:
    return await _caller(request, store, Role.VIEWER)


async def editor_caller(request: Request, store: StoreDep) -> TokenInfo:
    return await _caller(request, store, Role.EDITOR)


async def reviewer_caller(request: Request, store: StoreDep) -> TokenInfo:
    return await _caller(request, store, Role.REVIEWER)


async def admin_caller(request: Request, store: StoreDep) -> TokenInfo:
    return await _caller(request, store, Role.ADMIN)


Viewer = Annotated[TokenInfo, Depends(viewer_caller)]
Editor = Annotated[TokenInfo, Depends(editor_caller)]
Reviewer = Annotated[TokenInfo, Depends(reviewer_caller)]
Admin = Annotated[TokenInfo, Depends(admin_caller)]


def reader(token: TokenInfo) -> Reader:
    """Who the token speaks for, as the visibility rule (and the store's list filter) judge it."""
    return Reader(name=token.name, team=token.team, admin=token.role == Role.ADMIN)


# The report ----------------------------------------------------------------------------------

PostmortemId = Annotated[str, Path(description="the post-mortem's id, such as pagerduty-P123ABC")]


async def _report(store: Store, postmortem_id: str, token: TokenInfo) -> Postmortem:
    pm = await store.postmortems.get(postmortem_id)  # NotFound answers 404 with the same message
    who = reader(token)
    if may_see(who, pm) or may_see(who, pm, await store.review.get(postmortem_id)):
        return pm
    raise HTTPException(404, f"no post-mortem {postmortem_id!r}")  # hidden: as if it did not exist


async def visible_report(postmortem_id: PostmortemId, token: Viewer, store: StoreDep) -> Postmortem:
    return await _report(store, postmortem_id, token)


async def editable_report(postmortem_id: PostmortemId, token: Editor, store: StoreDep) -> Postmortem:
    return await _report(store, postmortem_id, token)


async def admin_report(postmortem_id: PostmortemId, token: Admin, store: StoreDep) -> Postmortem:
    return await _report(store, postmortem_id, token)


VisibleReport = Annotated[Postmortem, Depends(visible_report)]
"""The path's report, for any token that may see it."""
EditableReport = Annotated[Postmortem, Depends(editable_report)]
"""The path's report, for an editor (or higher) that may see it."""
AdminReport = Annotated[Postmortem, Depends(admin_report)]
"""The path's report, for an admin (who sees every report: 404 only when it does not exist)."""
