"""Secrets the service generates once and keeps in the store, so they survive restarts and every
replica (API processes, workers) reads the same one."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.store.tables import ServiceSecretRow


class SecretStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def get_or_create(self, name: str, now: datetime) -> str:
        """The secret called `name`, made (32 random bytes) the first time anyone asks; two replicas
        asking at once agree on the one that was stored first."""
        async with self._sessions() as session:
            value = await session.scalar(select(ServiceSecretRow.value).where(ServiceSecretRow.name == name))
            if value is not None:
                return str(value)
            session.add(ServiceSecretRow(name=name, value=secrets.token_urlsafe(32), created_at=now))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
        async with self._sessions() as session:
            stored = await session.scalar(select(ServiceSecretRow.value).where(ServiceSecretRow.name == name))
            assert stored is not None
            return str(stored)
