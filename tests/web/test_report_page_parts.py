"""The report page's problems with their retry button, and its timeline filters, over HTTP.

The problem is a real one: the publication's Slack announcement fails for good against the loopback
Slack (`channel_not_found`, tests/fakes' Switchable), the report shows it, an editor retries it from the
page once Slack is healed, and it is announced once. The filters are a plain GET form (no script):
by kind, by source, both, and what the page counts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

from postmortem.evidence.models import EntryKind, EvidenceSource, TimelineEntry
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_problem_retry_api import announcements
from tests.api.test_problem_retry_api import with_slack as with_slack  # the fixture
from tests.api.test_review_api import drafted, fill, person
from tests.fakes.slack import FakeSlack
from tests.support import eventually
from tests.web.test_pages import CSRF, sign_in

RETRY = re.compile(r'action="(/postmortems/[^"]+/problems/[^"]+/retry)"')


async def test_a_problem_on_the_report_is_retried_from_its_button(with_slack: tuple[Api, FakeSlack]) -> None:
    api, slack = with_slack
    pm_id = await drafted(api, "PPAGERETRY")
    base = f"/api/postmortems/{pm_id}"
    alice = await person(api, "alice@example.com", Role.REVIEWER)
    await fill(api, pm_id)
    slack.fail_with("channel_not_found", path="/api/chat.postMessage")
    assert (
        await api.http.post(f"{base}/submit", json={"reviewers": ["alice@example.com"]}, headers=api.auth())
    ).is_success
    assert (await api.http.post(f"{base}/approve", json={}, headers=alice)).json()["status"] == "PUBLISHED"

    async def open_problem() -> Any:
        problems = await api.store.problems.list(pm_id)
        return next((p for p in problems if p.step == "publish" and p.state.value == "open"), None)

    problem = await eventually(open_problem, timeout=30)
    await sign_in(api, Role.VIEWER)
    seen = (await api.http.get(f"/postmortems/{pm_id}")).text
    assert "channel_not_found" in seen and "Problems" in seen, "the problem in Slack's words, for every reader"
    assert not RETRY.search(seen), "no retry button for a viewer"

    await sign_in(api, Role.EDITOR)
    page = (await api.http.get(f"/postmortems/{pm_id}")).text
    buttons = [unescape(found) for found in RETRY.findall(page)]
    action = f"/postmortems/{pm_id}/problems/{problem.id}/retry"
    assert action in buttons, buttons
    csrf = CSRF.search(page).group(1)  # type: ignore[union-attr]
    refused = await api.http.post(action, data={})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert announcements(slack) == []

    slack.heal()
    retried = await api.http.post(action, data={"csrf": csrf})
    assert retried.status_code == 303 and "done=retrying" in retried.headers["location"], retried.text

    async def resolved() -> bool:
        return any(p.id == problem.id and p.state.value == "resolved" for p in await api.store.problems.list(pm_id))

    await eventually(resolved, timeout=30)
    assert len(announcements(slack)) == 1, "announced once"
    after = (await api.http.get(f"/postmortems/{pm_id}")).text
    assert action not in [unescape(found) for found in RETRY.findall(after)], "a resolved problem has no button"
    again = await api.http.post(action, data={"csrf": csrf})
    assert again.status_code == 409 and "resolved" in again.text, "the API's refusal, in its words"
    assert len(announcements(slack)) == 1


def _entry(key: str, minutes: int, kind: EntryKind, source: EvidenceSource, text: str) -> TimelineEntry:
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=minutes)
    return TimelineEntry(key=key, at=at, kind=kind, source=source, text=text)


def _shown(html: str) -> list[str]:
    return [
        text for text in ("Disk alert fired", "Ana acknowledged", "Bob wrote in #inc", "Failover done") if text in html
    ]


async def test_timeline_filters_by_kind_and_source_without_script(api: Api) -> None:
    pm_id = await drafted(api, "PPAGETIMELINE")
    await api.store.evidence.add_entries(
        pm_id,
        [
            _entry("t1", 0, EntryKind.ALERT_FIRED, EvidenceSource.ALERTMANAGER, "Disk alert fired"),
            _entry("t2", 5, EntryKind.ACKNOWLEDGED, EvidenceSource.PAGERDUTY, "Ana acknowledged"),
            _entry("t3", 9, EntryKind.MESSAGE, EvidenceSource.SLACK, "Bob wrote in #inc"),
            _entry("t4", 30, EntryKind.MITIGATED, EvidenceSource.SLACK, "Failover done"),
        ],
    )
    total = await api.store.evidence.count(pm_id)
    await sign_in(api, Role.VIEWER)
    url = f"/postmortems/{pm_id}"
    everything = (await api.http.get(url)).text
    form = everything[
        everything.index('class="filters"') - 200 : everything.index("</form>", everything.index('class="filters"'))
    ]
    assert 'method="get"' in form and 'name="kind" value="message"' in form and 'name="source" value="slack"' in form
    # The filters work without script: none in their form, and the page's only script is the live
    # editor's bundle (which the filters do not use; without it the page is the same).
    assert "<script" not in form and "onchange" not in form and "onclick" not in form
    scripts = re.findall(r"<script[^>]*>", everything)
    assert scripts in ([], ['<script src="/static/editor/editor.js" defer>']), scripts
    assert _shown(everything) == ["Disk alert fired", "Ana acknowledged", "Bob wrote in #inc", "Failover done"]

    by_source = (await api.http.get(url, params={"source": "slack"})).text
    assert _shown(by_source) == ["Bob wrote in #inc", "Failover done"]
    assert "(2/2)" in by_source and 'value="slack" checked' in by_source
    by_kinds = (await api.http.get(url, params=[("kind", "acknowledged"), ("kind", "alert_fired")])).text
    assert _shown(by_kinds) == ["Disk alert fired", "Ana acknowledged"]
    assert 'value="acknowledged" checked' in by_kinds and 'value="alert_fired" checked' in by_kinds
    both = (await api.http.get(url, params={"kind": "mitigated", "source": "slack"})).text
    assert _shown(both) == ["Failover done"]
    none = (await api.http.get(url, params={"kind": "mitigated", "source": "pagerduty"})).text
    assert _shown(none) == [] and "(0/0)" in none
    unknown = await api.http.get(url, params={"kind": "nonsense", "source": "nowhere"})
    assert unknown.status_code == 200 and f"/{total})" in unknown.text, "an unknown value filters nothing out"
    assert len(_shown(unknown.text)) == 4
