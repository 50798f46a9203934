"""REST: API tokens (admins only). The secret is returned once, at creation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from postmortem.api.auth import require
from postmortem.api.services import Services, get_services
from postmortem.store.tokens import Role, TokenInfo

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="the person's email, or a service's name")
    role: Role = Role.VIEWER
    team: str | None = Field(default=None, max_length=200, description="sees the team-visible reports of this team")


class CreatedToken(TokenInfo):
    token: str = Field(description="the secret; shown only now")


@router.get("", response_model=list[TokenInfo])
async def list_tokens(
    services: Annotated[Services, Depends(get_services)],
    _: Annotated[object, Depends(require(Role.ADMIN))],
) -> list[TokenInfo]:
    return await services.store.tokens.list()


@router.post("", response_model=CreatedToken, status_code=201)
async def create_token(
    body: TokenCreate,
    services: Annotated[Services, Depends(get_services)],
    _: Annotated[object, Depends(require(Role.ADMIN))],
) -> CreatedToken:
    info, secret = await services.store.tokens.create(body.name, body.role, datetime.now(UTC), team=body.team)
    return CreatedToken(**info.model_dump(), token=secret)


@router.delete("/{token_id}", response_model=TokenInfo)
async def revoke_token(
    token_id: str,
    services: Annotated[Services, Depends(get_services)],
    _: Annotated[object, Depends(require(Role.ADMIN))],
) -> TokenInfo:
    return await services.store.tokens.revoke(token_id, datetime.now(UTC))
