"""API tokens: created once (the secret is shown only then), stored hashed, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.store.errors import NotFound
from postmortem.store.tables import ApiTokenRow

PREFIX = "pm_"


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    REVIEWER = "reviewer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return [Role.VIEWER, Role.EDITOR, Role.REVIEWER, Role.ADMIN].index(self)


class TokenInfo(BaseModel):
    id: str
    name: str
    role: Role
    team: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        team=row.team,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class TokenStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def create(
        self, name: str, role: Role, now: datetime, secret: str | None = None, team: str | None = None
    ) -> tuple[TokenInfo, str]:
        secret = secret or PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(
            id=secrets.token_hex(8),
            name=name,
            role=role.value,
            team=team,
            token_hash=hash_token(secret),
            created_at=now,
        )
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
        return _info(row), secret

    async def ensure(self, name: str, role: Role, secret: str, now: datetime) -> TokenInfo:
        """Idempotent: the bootstrap token is registered once however often the service starts."""
        async with self._sessions() as session:
            row = await session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(secret)))
            if row is not None:
                return _info(row)
        info, _ = await self.create(name, role, now, secret=secret)
        return info

    async def authenticate(self, secret: str) -> TokenInfo | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(ApiTokenRow).where(
                    ApiTokenRow.token_hash == hash_token(secret), ApiTokenRow.revoked_at.is_(None)
                )
            )
            return _info(row) if row else None

    async def list(self) -> list[TokenInfo]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at))).all()
            return [_info(row) for row in rows]

    async def any_active(self) -> bool:
        async with self._sessions() as session:
            return (
                await session.scalar(select(ApiTokenRow.id).where(ApiTokenRow.revoked_at.is_(None)).limit(1))
            ) is not None

    async def revoke(self, token_id: str, now: datetime) -> TokenInfo:
        async with self._sessions() as session:
            await session.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = await session.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFound(f"no API token {token_id!r}")
            await session.commit()
            await session.refresh(row)
            return _info(row)
