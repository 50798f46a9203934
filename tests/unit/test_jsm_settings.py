"""JSM Operations settings: read from POSTMORTEM_JSM_*, secrets masked, a client only when the API can be called."""

from __future__ import annotations

import pytest

from postmortem.activities.clients import OutsideClients, jsm_configured
from postmortem.app.http_clients import outside_clients
from postmortem.app.settings import Settings
from postmortem.config import JsmSettings, reveal


def test_the_section_reads_its_variables_and_hides_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "POSTMORTEM_JSM_CLOUD_ID": "a436116f-02ce-4520-8fbb-7301462a1674",
        "POSTMORTEM_JSM_EMAIL": "ops-bot@example.com",
        "POSTMORTEM_JSM_API_TOKEN": "atlassian-api-token",
        "POSTMORTEM_JSM_WEBHOOK_TOKEN": "webhook-token",
    }.items():
        monkeypatch.setenv(name, value)
    jsm = Settings().jsm
    assert jsm.api_url == "https://api.atlassian.com"
    assert (jsm.cloud_id, jsm.email) == ("a436116f-02ce-4520-8fbb-7301462a1674", "ops-bot@example.com")
    assert reveal(jsm.api_token) == "atlassian-api-token" and reveal(jsm.webhook_token) == "webhook-token"
    assert "atlassian-api-token" not in repr(jsm) and "webhook-token" not in repr(jsm)
    assert jsm_configured(jsm)


async def test_a_client_only_when_site_account_and_token_are_all_set() -> None:
    full = JsmSettings(cloud_id="site", email="bot@example.com", api_token="token")
    clients = OutsideClients.configured(jsm=full)
    assert clients.open == ["jsm"]
    await clients.aclose()
    for partial in (
        JsmSettings(email="bot@example.com", api_token="token"),
        JsmSettings(cloud_id="site", api_token="token"),
        JsmSettings(cloud_id="site", email="bot@example.com", webhook_token="only the webhook"),
    ):
        assert not jsm_configured(partial)
        assert OutsideClients.configured(jsm=partial).open == []
    worker = outside_clients(Settings(jsm=full))
    assert "jsm" in worker.open
    await worker.aclose()
