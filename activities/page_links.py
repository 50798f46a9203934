"""The links to a report's page that we put in what we send: signed for the one person it goes to,
the plain page URL when it goes to several (or to a channel); whoever opens that signs in.

The signing key is the web section's secret, else the one the store generated and keeps (the pages
verify with the same: postmortem.web.session)."""

from __future__ import annotations

from datetime import datetime

from postmortem.config import ServerSettings, WebSettings, reveal
from postmortem.review import signed_links
from postmortem.store.store import Store

LINK_SECRET_NAME = signed_links.STORED_SECRET


class PageLinks:
    def __init__(self, store: Store, server: ServerSettings | None = None, web: WebSettings | None = None) -> None:
        self._store = store
        self._public_url = (server or ServerSettings()).resolved_public_url
        self._web = web or WebSettings()

    def page(self, postmortem_id: str) -> str:
        return signed_links.page_url(self._public_url, postmortem_id)

    async def for_people(self, postmortem_id: str, people: list[str], now: datetime) -> str:
        """A signed link when exactly one person reads it, else the plain page URL."""
        if len(people) != 1:
            return self.page(postmortem_id)
        secret = reveal(self._web.link_secret) or await self._store.secrets.get_or_create(LINK_SECRET_NAME, now)
        expires = signed_links.expiry(now, self._web.link_ttl_days)
        return signed_links.signed_url(self._public_url, secret, postmortem_id, people[0], expires)
