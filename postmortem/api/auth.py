"""Bearer-token authentication and role checks for the REST API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request

from postmortem.api.services import Services, get_services
from postmortem.store.tokens import Role, TokenInfo


def require(role: Role) -> Callable[..., Awaitable[TokenInfo]]:
    async def dependency(request: Request, services: Services = Depends(get_services)) -> TokenInfo:
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
        info = await services.store.tokens.authenticate(token.strip())
        if info is None:
            raise HTTPException(401, "unknown or revoked API token", headers={"WWW-Authenticate": "Bearer"})
        if info.role.rank < role.rank:
            raise HTTPException(
                403, f"this action needs the {role.value} role; token {info.name!r} has {info.role.value}"
            )
        return info

    return dependency
