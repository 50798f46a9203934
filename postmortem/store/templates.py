"""Teams' own templates in the store; the built-in ones live in the code and are read-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from postmortem.report.template_catalogue import ReportTemplate
from postmortem.store.errors import NotFound, VersionConflict
from postmortem.store.tables import TemplateRow


class AlreadyExists(Exception):
    pass


class TemplateStore:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def list(self) -> list[tuple[ReportTemplate, int]]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(TemplateRow).order_by(TemplateRow.name))).all()
            return [(ReportTemplate.model_validate(row.data), row.version) for row in rows]

    async def get(self, name: str) -> tuple[ReportTemplate, int]:
        async with self._sessions() as session:
            row = await session.get(TemplateRow, name)
            if row is None:
                raise NotFound(f"no template {name!r}")
            return ReportTemplate.model_validate(row.data), row.version

    async def create(self, template: ReportTemplate, now: datetime) -> int:
        async with self._sessions() as session:
            session.add(
                TemplateRow(
                    name=template.name, data=template.model_dump(mode="json"), version=1, created_at=now, updated_at=now
                )
            )
            try:
                await session.commit()
            except IntegrityError as exc:
                raise AlreadyExists(f"a template named {template.name!r} exists already") from exc
        return 1

    async def replace(self, template: ReportTemplate, expected_version: int | None, now: datetime) -> int:
        conditions = [TemplateRow.name == template.name]
        if expected_version is not None:
            conditions.append(TemplateRow.version == expected_version)
        async with self._sessions() as session:
            result = await session.execute(
                update(TemplateRow)
                .where(*conditions)
                .values(data=template.model_dump(mode="json"), version=TemplateRow.version + 1, updated_at=now)
            )
            if result.rowcount == 0:
                row = await session.get(TemplateRow, template.name)
                if row is None:
                    raise NotFound(f"no template {template.name!r}")
                raise VersionConflict(row.version)
            await session.commit()
        return (await self.get(template.name))[1]

    async def delete(self, name: str) -> None:
        async with self._sessions() as session:
            result = await session.execute(delete(TemplateRow).where(TemplateRow.name == name))
            if result.rowcount == 0:
                raise NotFound(f"no template {name!r}")
            await session.commit()
