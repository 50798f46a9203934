"""POST /webhooks/alertmanager: the saved version-4 deliveries are stored as alerts, firing and resolved.

The app runs in-process over a real SQLite store; this route starts no workflow, so Temporal is a
gateway pointed at a port nobody listens on.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from postmortem.api.app import create_app
from postmortem.api.services import Services
from postmortem.app.gateway import TemporalGateway
from postmortem.app.settings import Settings
from postmortem.config import AlertmanagerSettings, StoreSettings
from postmortem.incident.teams import TeamsConfig
from postmortem.store.store import Store
from tests.fixtures import fixture_json
from tests.support import free_port

TOKEN = "alertmanager-token-for-tests"
URL = "/webhooks/alertmanager"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FIRING = "alertmanager_webhook_v4_firing.json"  # two alerts, with fingerprints, nanosecond Z times
FIRING_SINGLE = "alertmanager_webhook_v4_firing_single_line.json"  # no fingerprint, +01:00, endsAt in the future
RESOLVED = "alertmanager_webhook_v4_resolved.json"  # the same alert as FIRING_SINGLE, resolved
EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))

ClientFor = Callable[[str | None], Any]


@pytest_asyncio.fixture
async def client_for(sqlite_store: Store, tmp_path) -> AsyncIterator[ClientFor]:
    """`await client_for(token)` → an httpx client on the app with that webhook token (None: unset)."""
    clients: list[httpx.AsyncClient] = []

    async def build(token: str | None) -> httpx.AsyncClient:
        settings = Settings(
            store=StoreSettings(data_dir=tmp_path), alertmanager=AlertmanagerSettings(webhook_token=token)
        )
        gateway = TemporalGateway(f"127.0.0.1:{free_port()}", "default", "unused")
        app = create_app(Services(settings=settings, store=sqlite_store, temporal=gateway, teams=TeamsConfig()))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


@pytest_asyncio.fixture
async def http(client_for: ClientFor) -> httpx.AsyncClient:
    return await client_for(TOKEN)


async def stored(store: Store) -> list[dict[str, Any]]:
    return await store.evidence.alerts_between(*EVER)


async def post(http: httpx.AsyncClient, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await http.post(URL, content=body, headers={"Content-Type": "application/json", **(headers or BEARER)})


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


# Storing -----------------------------------------------------------------------------------------


async def test_firing_alerts_are_stored_without_an_end(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    payload = fixture_json(FIRING)
    assert all(alert["endsAt"] == "0001-01-01T00:00:00Z" for alert in payload["alerts"])
    response = await post(http, payload)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "stored", "alerts": 2}

    rows = {row["fingerprint"]: row for row in await stored(sqlite_store)}
    assert set(rows) == {"a1bc48475b20e73d", "c2ea85182f28cbd9"}
    for fingerprint, row in rows.items():
        assert row["status"] == "firing", fingerprint
        assert row["ends_at"] is None, "0001-01-01 means 'still firing', not a year-1 end"
        # 00:17:58.432911368Z: nanoseconds cut to microseconds, still UTC.
        assert row["starts_at"] == utc(2020, 2, 6, 0, 17, 58, 432911)
        assert row["labels"] == {"alertname": "High CPU Temperature", "host": "andromeda", "severity": "critical"}
        assert row["generator_url"].startswith("http://cobalt:9090/graph?g0.expr=")
    assert rows["a1bc48475b20e73d"]["annotations"]["description"] == "CPU core temperature is 34.75C"
    assert rows["c2ea85182f28cbd9"]["annotations"]["description"] == "CPU core temperature is 17.625C"


async def test_offset_and_nanoseconds_give_the_right_utc_instant(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    payload = fixture_json(FIRING_SINGLE)
    assert payload["alerts"][0]["startsAt"] == "2018-11-04T22:43:58.283995108+01:00"
    response = await post(http, payload)
    assert response.status_code == 202, response.text

    [row] = await stored(sqlite_store)
    assert row["starts_at"] == utc(2018, 11, 4, 21, 43, 58, 283995)
    assert row["starts_at"].utcoffset() is not None and row["starts_at"].utcoffset().total_seconds() == 0
    assert row["status"] == "firing"
    # Prometheus sends a provisional endsAt in the future on firing alerts; it is not an end.
    assert payload["alerts"][0]["endsAt"] == "2018-11-04T22:46:58.283995108+01:00"
    assert row["ends_at"] is None
    assert row["labels"] == {"alertname": "Fire", "severity": "critical"}
    assert row["annotations"] == {"message": "Something is on fire"}


async def test_a_delivery_without_fingerprint_stores_once(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    payload = fixture_json(FIRING_SINGLE)
    assert "fingerprint" not in payload["alerts"][0]
    for _ in range(2):
        response = await post(http, payload)
        assert response.status_code == 202, response.text
    [row] = await stored(sqlite_store)
    assert row["fingerprint"] and len(row["fingerprint"]) <= 64


async def test_a_later_resolved_notification_resolves_the_row(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    assert (await post(http, fixture_json(FIRING_SINGLE))).status_code == 202
    [firing] = await stored(sqlite_store)

    response = await post(http, fixture_json(RESOLVED))
    assert response.status_code == 202, response.text
    [row] = await stored(sqlite_store)
    assert row["fingerprint"] == firing["fingerprint"]
    assert row["starts_at"] == firing["starts_at"]
    assert row["status"] == "resolved"
    assert row["ends_at"] == utc(2018, 11, 4, 21, 48, 13, 283995)  # 22:48:13.283995108+01:00


async def test_resolving_one_alert_of_a_group_by_its_fingerprint(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    payload = fixture_json(FIRING)
    assert (await post(http, payload)).status_code == 202
    resolved = copy.deepcopy(payload)
    resolved["status"] = "resolved"
    resolved["alerts"] = [{**payload["alerts"][0], "status": "resolved", "endsAt": "2020-02-06T02:17:58.5+01:00"}]
    assert (await post(http, resolved)).status_code == 202

    rows = {row["fingerprint"]: row for row in await stored(sqlite_store)}
    assert len(rows) == 2
    assert rows["a1bc48475b20e73d"]["status"] == "resolved"
    assert rows["a1bc48475b20e73d"]["ends_at"] == utc(2020, 2, 6, 1, 17, 58, 500000)
    assert rows["c2ea85182f28cbd9"]["status"] == "firing" and rows["c2ea85182f28cbd9"]["ends_at"] is None


# Authentication ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong"),
        pytest.param({"Authorization": "Bearer "}, id="empty"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="not-bearer"),
        pytest.param({"Authorization": TOKEN}, id="no-scheme"),
    ],
)
async def test_a_configured_token_is_required(http: httpx.AsyncClient, sqlite_store: Store, headers) -> None:
    body = json.dumps(fixture_json(FIRING)).encode()
    response = await http.post(URL, content=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 401, response.text
    assert response.json()["detail"]
    assert await stored(sqlite_store) == []


async def test_the_right_token_is_accepted(http: httpx.AsyncClient, sqlite_store: Store) -> None:
    response = await post(http, fixture_json(FIRING), headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 202, response.text
    assert len(await stored(sqlite_store)) == 2


async def test_no_token_needed_when_none_is_configured(client_for: ClientFor, sqlite_store: Store) -> None:
    http = await client_for(None)
    response = await http.post(URL, content=json.dumps(fixture_json(FIRING)).encode())
    assert response.status_code == 202, response.text
    assert len(await stored(sqlite_store)) == 2


# Rejections -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3", None])
async def test_other_versions_are_422_naming_version(http: httpx.AsyncClient, sqlite_store: Store, version) -> None:
    payload = fixture_json(FIRING)
    if version is None:
        del payload["version"]
    else:
        payload["version"] = version
    response = await post(http, payload)
    assert response.status_code == 422, response.text
    assert "version" in response.json()["detail"]
    assert await stored(sqlite_store) == []


@pytest.mark.parametrize(
    ("index", "field", "change"),
    [
        pytest.param(0, "labels", lambda alert: alert.pop("labels"), id="labels-missing"),
        pytest.param(1, "labels", lambda alert: alert.update(labels={}), id="labels-empty"),
        pytest.param(0, "startsAt", lambda alert: alert.pop("startsAt"), id="startsAt-missing"),
        pytest.param(1, "startsAt", lambda alert: alert.update(startsAt="yesterday"), id="startsAt-not-a-time"),
    ],
)
async def test_a_broken_alert_is_422_naming_it(
    http: httpx.AsyncClient, sqlite_store: Store, index, field, change
) -> None:
    payload = fixture_json(FIRING)
    change(payload["alerts"][index])
    response = await post(http, payload)
    assert response.status_code == 422, response.text
    assert f"alerts[{index}].{field}" in response.json()["detail"]
    assert await stored(sqlite_store) == [], "a rejected delivery stores none of its alerts"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"receiver=ops&status=firing", id="form"),
        pytest.param(b'{"version": "4", ', id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[]", id="array"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(http: httpx.AsyncClient, body: bytes) -> None:
    response = await post(http, body)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


# Bugs found while writing these (see the reasons) ------------------------------------------------


async def test_an_impossible_date_is_422_not_500(http: httpx.AsyncClient) -> None:
    payload = fixture_json(FIRING)
    payload["alerts"][0]["startsAt"] = "2020-13-01T00:17:58.432911368Z"
    response = await post(http, payload)
    assert response.status_code == 422, response.text
    assert "alerts[0].startsAt" in response.json()["detail"]


async def test_a_non_object_alert_is_422_naming_its_index(http: httpx.AsyncClient) -> None:
    payload = fixture_json(FIRING)
    payload["alerts"] = ["not an alert", payload["alerts"][1]]
    response = await post(http, payload)
    assert response.status_code == 422, response.text
    assert "alerts[0]" in response.json()["detail"]


async def test_a_missing_fingerprint_is_the_one_alertmanager_would_send(
    http: httpx.AsyncClient, sqlite_store: Store
) -> None:
    payload = fixture_json(FIRING)
    payload["alerts"] = [payload["alerts"][0]]
    sent = payload["alerts"][0].pop("fingerprint")
    assert sent == "a1bc48475b20e73d"  # FNV-1a of this alert's labels, as Alertmanager computes it
    assert (await post(http, payload)).status_code == 202
    [row] = await stored(sqlite_store)
    assert row["fingerprint"] == sent
