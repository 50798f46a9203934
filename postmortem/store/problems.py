"""The problems of a report: side effects of its workflows that failed for good, kept until retried.

One row per problem id (the workflow derives it from the step and target), so recording the same
failure again (a retried activity, a replayed workflow) counts no extra attempt, and the caller
learns whether this was the first recording (the report's owner is told once per problem).
"""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from postmortem.review.problems import Problem, ProblemState
from postmortem.store.errors import NotFound
from postmortem.store.tables import PostmortemRow, ProblemRow

__all__ = ["NotFound", "ProblemStore"]


def _problem(row: ProblemRow) -> Problem:
    return Problem(
        id=row.id,
        step=row.step,
        target=row.target,
        message=row.message,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        attempts=row.attempts,
        state=ProblemState(row.state),
        workflow_id=row.workflow_id,
    )


class ProblemStore:
    def __init__(self, sessions: async_sessionmaker, dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect

    async def record(
        self,
        postmortem_id: str,
        *,
        problem_id: str,
        workflow_id: str,
        step: str,
        target: str,
        message: str,
        attempt: int,
        now: datetime,
    ) -> tuple[Problem, bool]:
        """Store the failure; True when this problem was not recorded before.

        A later attempt (higher than any stored) takes the upstream's newest words and opens the
        problem again (a retry that failed); the same attempt recorded twice changes nothing.
        """
        insert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(ProblemRow)
        statement = insert.values(
            postmortem_id=postmortem_id,
            id=problem_id,
            workflow_id=workflow_id,
            step=step,
            target=target,
            message=message,
            attempts=attempt,
            state=ProblemState.OPEN.value,
            first_seen=now,
            last_seen=now,
        ).on_conflict_do_nothing(index_elements=["postmortem_id", "id"])
        async with self._sessions() as session:
            if await session.scalar(select(PostmortemRow.id).where(PostmortemRow.id == postmortem_id)) is None:
                raise NotFound(f"no post-mortem {postmortem_id!r}")
            try:
                first = (await session.execute(statement)).rowcount == 1
                if not first:
                    await session.execute(
                        update(ProblemRow)
                        .where(
                            ProblemRow.postmortem_id == postmortem_id,
                            ProblemRow.id == problem_id,
                            ProblemRow.attempts < attempt,
                        )
                        .values(attempts=attempt, message=message, last_seen=now, state=ProblemState.OPEN.value)
                    )
                await session.commit()
            except IntegrityError as exc:  # the report was deleted in between
                await session.rollback()
                raise NotFound(f"no post-mortem {postmortem_id!r}") from exc
            return _problem(await self._row(session, postmortem_id, problem_id)), first

    async def set_state(self, postmortem_id: str, problem_id: str, state: ProblemState, now: datetime) -> Problem:
        """A retry asked for (RETRYING), done (RESOLVED), or given up (OPEN)."""
        async with self._sessions() as session:
            result = await session.execute(
                update(ProblemRow)
                .where(ProblemRow.postmortem_id == postmortem_id, ProblemRow.id == problem_id)
                .values(state=state.value)
            )
            if result.rowcount == 0:
                raise NotFound(f"no problem {problem_id!r} on post-mortem {postmortem_id!r}")
            await session.commit()
            return _problem(await self._row(session, postmortem_id, problem_id))

    async def get(self, postmortem_id: str, problem_id: str) -> Problem:
        async with self._sessions() as session:
            return _problem(await self._row(session, postmortem_id, problem_id))

    async def list(self, postmortem_id: str) -> builtins.list[Problem]:
        """Oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ProblemRow)
                .where(ProblemRow.postmortem_id == postmortem_id)
                .order_by(ProblemRow.first_seen, ProblemRow.id)
            )
            return [_problem(row) for row in rows]

    @staticmethod
    async def _row(session: AsyncSession, postmortem_id: str, problem_id: str) -> ProblemRow:
        row = await session.get(ProblemRow, (postmortem_id, problem_id), populate_existing=True)
        if row is None:
            raise NotFound(f"no problem {problem_id!r} on post-mortem {postmortem_id!r}")
        return row
