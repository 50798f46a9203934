"""REST: API tokens (admins only). The secret is returned once, at creation."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from postmortem.api.deps import Admin, StoreDep
from postmortem.store.tokens import Role, TokenInfo

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="the person's email, or a service's name")
    role: Role = Role.VIEWER
    team: str | None = Field(default=None, max_length=200, description="sees the team-visible reports of this team")


class CreatedToken(TokenInfo):
    token: str = Field(description="the secret; shown only now")


@router.get("", response_model=list[TokenInfo])
async def list_tokens(store: StoreDep, _: Admin) -> list[TokenInfo]:
    return await store.tokens.list()


@router.post("", response_model=CreatedToken, status_code=201)
async def create_token(body: TokenCreate, store: StoreDep, _: Admin) -> CreatedToken:
    info, secret = await store.tokens.create(body.name, body.role, datetime.now(UTC), team=body.team)
    return CreatedToken(**info.model_dump(), token=secret)


@router.delete("/{token_id}", response_model=TokenInfo)
async def revoke_token(token_id: str, store: StoreDep, _: Admin) -> TokenInfo:
    return await store.tokens.revoke(token_id, datetime.now(UTC))
