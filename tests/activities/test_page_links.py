"""The links we send: signed for the one person who reads them, plain for several; the key is the
configured one, else the one the store keeps (what the pages verify with)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from postmortem.activities.page_links import LINK_SECRET_NAME, PageLinks
from postmortem.config import ServerSettings, WebSettings
from postmortem.review import signed_links
from postmortem.store.store import Store
from postmortem.web import session

SERVER = ServerSettings(public_url="https://pm.example.com/")


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


async def test_one_reader_gets_a_signed_link_several_the_page(sqlite_store: Store) -> None:
    now = datetime.now(UTC)
    links = PageLinks(sqlite_store, SERVER, WebSettings(link_ttl_days=3))
    url = await links.for_people("pagerduty-P1", ["ana@example.com"], now)
    assert url.startswith("https://pm.example.com/postmortems/pagerduty-P1?t=")
    secret = await sqlite_store.secrets.get_or_create(session.LINK_SECRET_NAME, now)
    assert LINK_SECRET_NAME == session.LINK_SECRET_NAME  # the pages verify with the key the worker signs with
    assert signed_links.verify(secret, token_of(url), "pagerduty-P1", now + timedelta(days=2)) == "ana@example.com"
    with pytest.raises(signed_links.LinkRefused) as refused:
        signed_links.verify(secret, token_of(url), "pagerduty-P1", now + timedelta(days=3, seconds=1))
    assert refused.value.reason == signed_links.Refusal.EXPIRED
    several = await links.for_people("pagerduty-P1", ["ana@example.com", "bo@example.com"], now)
    assert several == "https://pm.example.com/postmortems/pagerduty-P1"


async def test_a_configured_secret_is_used(sqlite_store: Store) -> None:
    now = datetime.now(UTC)
    links = PageLinks(sqlite_store, SERVER, WebSettings(link_secret=SecretStr("configured-secret")))
    url = await links.for_people("pm-1", ["ana@example.com"], now)
    assert signed_links.verify("configured-secret", token_of(url), "pm-1", now) == "ana@example.com"
