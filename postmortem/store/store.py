"""One object that opens the database and hands out the stores; shared by API, worker and CLI."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from postmortem.store.database import check_schema, create_engine, migrate, sessionmaker
from postmortem.store.documents import DocumentStore
from postmortem.store.evidence import EvidenceStore
from postmortem.store.follow_ups import FollowUpStore
from postmortem.store.images import ImageStore
from postmortem.store.inbox import InboxStore
from postmortem.store.meetings import MeetingStore
from postmortem.store.postmortems import PostmortemStore
from postmortem.store.problems import ProblemStore
from postmortem.store.program_metrics import MetricsStore
from postmortem.store.review import ReviewStore
from postmortem.store.secrets import SecretStore
from postmortem.store.similarity import SimilarityStore
from postmortem.store.templates import TemplateStore
from postmortem.store.tokens import TokenStore


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        sessions = sessionmaker(engine)
        self.postmortems = PostmortemStore(sessions)
        self.tokens = TokenStore(sessions)
        self.evidence = EvidenceStore(sessions, engine.dialect.name)
        self.meetings = MeetingStore(sessions)
        self.review = ReviewStore(sessions)
        self.templates = TemplateStore(sessions)
        self.images = ImageStore(sessions)
        self.follow_ups = FollowUpStore(sessions, engine.dialect.name)
        self.inbox = InboxStore(sessions, engine.dialect.name)
        self.problems = ProblemStore(sessions, engine.dialect.name)
        self.similarity = SimilarityStore(sessions, engine.dialect.name)
        self.secrets = SecretStore(sessions)
        self.metrics = MetricsStore(engine)
        self.documents = DocumentStore(sessions)

    @classmethod
    async def open(cls, url: str, *, schema: str | None = None, migrate_schema: bool = True) -> Store:
        """`migrate_schema=False` checks the schema is the code's instead (`SchemaNotCurrent` if not)."""
        engine = create_engine(url, schema=schema)
        try:
            await (migrate(engine) if migrate_schema else check_schema(engine))
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
