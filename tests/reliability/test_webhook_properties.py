"""Property-based tests of every webhook parser, through the app: arbitrary JSON, and the real payloads mutated.

For PagerDuty (V3 and V2), Opsgenie, Alertmanager, GitHub, Jira and Linear, hypothesis sends bodies
signed (or with the token) the way the real sender would, so each reaches its parser, and checks:

- never a 5xx, never a 401 or 503 (the signature is right and the webhook configured), and every 4xx
  is JSON `{"detail": "<sentence>"}`;
- never a 202 for something that cannot become a report: each post-mortem a 202 names is then drafted
  by the real worker (relayed from the inbox), and no inbox entry ends `failed`; a 202 that stores
  alerts stored each one sent; a 202 that syncs a ticket names an action item that exists.

Hypothesis runs in a worker thread (it drives plain functions), each request on the test's event loop,
where the app, the store, the worker and the relay live; the reports are awaited once at the end.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from postmortem.models import TICKET_STATUS, ActionItemStatus, Priority
from postmortem.store.inbox import InboxState
from postmortem.store.postmortems import NotFound
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event
from tests.fixtures import fixture_json
from tests.reliability.inprocess import Target, in_process, webhook_auth
from tests.support import eventually

pytestmark = pytest.mark.reliability

T = TypeVar("T")
EXAMPLES = 80
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the work tree; a failure prints its example and seed
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# Tickets that exist, so a mutated tracker event can really sync one.
TICKETS = {"github": "acme/ops#7", "jira": "OPS-24", "linear": "ENG-12"}

FIXTURES: dict[str, list[str]] = {
    "pagerduty": [
        "pagerduty_v3_incident_resolved.json",
        "pagerduty_v3_incident_triggered.json",
        "pagerduty_v3_incident_acknowledged.json",
        "pagerduty_v3_incident_annotated.json",
        "pagerduty_v2_incident_resolve.json",
        "pagerduty_v2_incident_trigger.json",
    ],
    "opsgenie": [
        "opsgenie_webhook_close.json",
        "opsgenie_webhook_create.json",
        "opsgenie_webhook_acknowledge.json",
        "opsgenie_webhook_addnote.json",
    ],
    "jsm": ["jsm_webhook_close.json", "jsm_webhook_acknowledge.json"],
    "alertmanager": [
        "alertmanager_webhook_v4_firing.json",
        "alertmanager_webhook_v4_resolved.json",
        "alertmanager_webhook_v4_firing_single_line.json",
    ],
}

# The trackers' events as their documentation shows them (tests/api/test_tracker_webhooks.py sends the same).
TRACKER_EVENTS: dict[str, dict[str, Any]] = {
    "github": {
        "action": "closed",
        "issue": {"number": 7, "state": "closed", "state_reason": "completed"},
        "repository": {"full_name": "acme/ops"},
    },
    "jira": {
        "webhookEvent": "jira:issue_updated",
        "issue": {
            "key": "OPS-24",
            "fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}, "resolution": {"name": "Done"}},
        },
    },
    "linear": {"action": "update", "type": "Issue", "data": {"identifier": "ENG-12", "state": {"type": "started"}}},
}

# Values a sender might put anywhere: the odd ones a parser must not trip over, then arbitrary JSON.
ODD: st.SearchStrategy[Any] = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "0001-01-01T00:00:00Z",
        "2021-02-30T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "-1",
        "Close",
        "incident.resolved",
        "incident.resolve",
        "incident",
        "firing",
        "resolved",
        0,
        -1,
        10**30,
        1.5,
        True,
        None,
        [],
        {},
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
)
VALUES = ODD | JSON
# Top-level keys the parsers look at, so arbitrary objects get past the first question now and then.
KEYS = st.sampled_from(
    ["event", "messages", "action", "alert", "version", "alerts", "issue", "repository", "data", "type", "webhookEvent"]
)
ARBITRARY = st.dictionaries(KEYS | st.text(max_size=12), VALUES, max_size=6) | JSON
IDS = st.from_regex(r"P[A-Z0-9]{7}", fullmatch=True)


def locations(doc: Any) -> list[tuple[str | int, ...]]:
    """The path of every value inside `doc` (not the root), found without recursion."""
    found: list[tuple[str | int, ...]] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        children: list[tuple[str | int, Any]] = []
        if isinstance(value, dict):
            children = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        for key, child in children:
            found.append((*path, key))
            stack.append((child, (*path, key)))
    return sorted(found, key=lambda path: (len(path), repr(path)))


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """`doc` with one to four values replaced (by odd or arbitrary JSON) or removed."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        places = locations(doc)
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "poison"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "poison" and isinstance(parent[path[-1]], str):
            # Text no store can hold and no encoder can write back: NUL, or a lone surrogate.
            parent[path[-1]] += draw(st.sampled_from(["\x00", "\ud800", "\udfff"]))
        else:
            parent[path[-1]] = draw(VALUES)
    return doc


def fresh_ids(source: str, doc: Any, incident_id: str) -> Any:
    """Each example its own incident, so each accepted one must become a report of its own."""
    if source == "pagerduty" and isinstance(doc.get("event"), dict):
        doc["event"]["data"]["id"] = incident_id
        doc["event"]["id"] = f"EV{incident_id}"
    elif source == "pagerduty":
        for index, message in enumerate(doc["messages"]):
            message["incident"]["id"] = incident_id
            message["id"] = f"EV{incident_id}-{index}"
    elif source in ("opsgenie", "jsm"):
        doc["alert"]["alertId"] = f"alert-{incident_id}"
    return doc


def real_payloads(source: str) -> st.SearchStrategy[Any]:
    if source in TRACKER_EVENTS:
        return st.just(TRACKER_EVENTS[source])
    # The resolving payload (first in each list) is drawn half the time: a mutation keeps most of them
    # acceptable, so every run takes the 202-then-report path (a quarter of 80 examples, mutated, did not
    # always: a run with no accepted resolve then proves nothing about it).
    names = FIXTURES[source]
    weighted = st.one_of(st.just(names[0]), st.sampled_from(names))
    return st.builds(fresh_ids, st.just(source), weighted.map(fixture_json), IDS)


@pytest_asyncio.fixture
async def target(dev_env: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path) -> AsyncIterator[Target]:
    async with in_process(sqlite_store, tmp_path, temporal=dev_env.client) as running:
        yield running


async def seed_tickets(store: Store) -> None:
    now = datetime.now(UTC)
    pm, _ = await store.postmortems.create_if_absent(new_postmortem(pagerduty_event("PTICKETS").incident))
    for tracker, key in TICKETS.items():
        item = await store.postmortems.add_action_item(
            pm.id,
            description=f"Fix it ({tracker})",
            owner=None,
            due_date=None,
            priority=Priority.HIGH,
            status=ActionItemStatus.OPEN,
            now=now,
        )
        await store.postmortems.set_ticket(pm.id, item.id, tracker, key, f"https://tracker/{key}", now)


class Checker:
    """Sends one body to one webhook and judges the answer; remembers the reports promised."""

    def __init__(self, target: Target, source: str, loop: asyncio.AbstractEventLoop) -> None:
        self.target = target
        self.source = source
        self.loop = loop
        self.promised: set[str] = set()
        self.statuses: dict[int, int] = {}

    def on_loop(self, make: Callable[[], Awaitable[T]]) -> T:
        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=60)

    def check(self, doc: Any) -> None:
        body = json.dumps(doc).encode()  # ensure_ascii: a lone surrogate travels as its \\ud800 escape
        response = self.on_loop(
            lambda: self.target.http.post(
                f"/webhooks/{self.source}", content=body, headers=webhook_auth(self.source, body)
            )
        )
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, f"{response.status_code} {response.text[:500]}\nbody: {body[:500]!r}"
        assert response.status_code not in (401, 413), response.text
        assert response.headers["content-type"].startswith("application/json"), response.headers
        answer = response.json()
        if response.status_code >= 400:
            assert set(answer) == {"detail"} and isinstance(answer["detail"], str) and answer["detail"], answer
            return
        assert response.status_code == 202, response.text
        self.judge(doc, answer)

    def judge(self, doc: Any, answer: dict[str, Any]) -> None:
        if self.source in ("pagerduty", "opsgenie", "jsm"):
            assert answer["status"] in ("accepted", "ignored"), answer
            for started in answer["postmortems"]:
                assert started["outcome"] in ("queued", "accepted", "linked"), answer
                self.promised.add(started["postmortem_id"])
        elif self.source == "alertmanager":
            assert answer == {"status": "stored", "alerts": len(doc["alerts"])}, answer
        else:
            assert answer["status"] in ("ignored", "synced", "unchanged"), answer
            if answer["status"] != "ignored":
                assert answer["ticket"] == TICKETS[self.source], answer
                item, _ = self.on_loop(
                    lambda: self.target.store.postmortems.get_action_item(
                        answer["postmortem_id"], answer["action_item"]
                    )
                )
                assert item.status == TICKET_STATUS[answer["state"]], (item, answer)

    async def every_promise_kept(self) -> None:
        """Each report a 202 named is drafted by the worker; no delivery is stranded as `failed`."""

        async def missing() -> list[str]:
            absent = []
            for pm_id in sorted(self.promised):
                try:
                    await self.target.store.postmortems.get(pm_id)
                except NotFound:
                    absent.append(pm_id)
            return absent

        async def drafted() -> bool:
            failed, _ = await self.target.store.inbox.list(InboxState.FAILED, limit=5)
            assert not failed, f"inbox entries failed after a 202: {failed}"
            return not await missing()

        try:
            await eventually(drafted, timeout=120, interval=0.2)
        except AssertionError as exc:
            absent = await missing()
            entries, _ = await self.target.store.inbox.list(None, limit=10)
            raise AssertionError(
                f"{len(absent)} of {len(self.promised)} promised reports missing (e.g. {absent[:5]}); "
                f"inbox {await self.target.store.inbox.counts()}: {entries}"
            ) from exc


async def run_properties(target: Target, source: str, strategy: st.SearchStrategy[Any]) -> Checker:
    checker = Checker(target, source, asyncio.get_running_loop())

    @PROPERTY_SETTINGS
    @given(doc=strategy)
    def property_holds(doc: Any) -> None:
        checker.check(doc)

    await asyncio.to_thread(property_holds)
    await checker.every_promise_kept()
    return checker


SOURCES = ["pagerduty", "opsgenie", "jsm", "alertmanager", "github", "jira", "linear"]


@pytest.mark.parametrize("source", SOURCES)
async def test_arbitrary_json_never_breaks_a_webhook(target: Target, source: str) -> None:
    await seed_tickets(target.store)
    checker = await run_properties(target, source, ARBITRARY)
    assert sum(checker.statuses.values()) >= EXAMPLES // 2, checker.statuses


@pytest.mark.parametrize("source", SOURCES)
async def test_mutated_real_payloads_are_refused_or_become_what_they_promise(target: Target, source: str) -> None:
    await seed_tickets(target.store)
    checker = await run_properties(target, source, real_payloads(source).flatmap(mutated))
    assert sum(checker.statuses.values()) >= EXAMPLES // 2, checker.statuses
    if source in ("pagerduty", "opsgenie", "jsm"):  # the 202-then-report path was taken, not only refusals
        assert checker.promised, checker.statuses


@pytest.mark.parametrize("source", SOURCES)
async def test_the_real_payloads_themselves_are_accepted(target: Target, source: str) -> None:
    """The other side of the property: what the real senders send is not refused."""
    await seed_tickets(target.store)
    checker = Checker(target, source, asyncio.get_running_loop())
    names = FIXTURES.get(source, [])
    docs = [fresh_ids(source, fixture_json(name), f"PREAL{index}") for index, name in enumerate(names)]
    for doc in docs or [TRACKER_EVENTS[source]]:
        await asyncio.to_thread(checker.check, doc)
    assert checker.statuses == {202: len(docs) or 1}, checker.statuses
    await checker.every_promise_kept()
    if source == "pagerduty":
        assert {"pagerduty-PREAL0", "pagerduty-PREAL4"} <= checker.promised  # the V3 and the V2 resolve
