"""The action-item board and the metrics page over HTTP: only what the caller may see (the rows of
GET /api/action-items, the figures of GET /api/metrics), the filters, overdue highlighted, the CSV,
pagination, charts with their titles, descriptions and tables."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

from postmortem.models import ActionItemStatus, Priority, Visibility
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.tokens import Role
from tests.api.conftest import Api
from tests.api.test_metrics_api import report
from tests.factories import new_postmortem, pagerduty_event
from tests.web.test_pages import csrf_of

NOW = datetime.now(UTC)


async def sign_in_as(api: Api, name: str, role: Role = Role.VIEWER, team: str | None = None) -> None:
    _, secret = await api.store.tokens.create(name, role, NOW, team=team)
    csrf = await csrf_of(api.http)
    signed = await api.http.post("/signin", data={"csrf": csrf, "token": secret, "next": "/action-items"})
    assert signed.status_code == 303


async def item(api: Api, pm_id: str, description: str, owner: str, due: date, status: ActionItemStatus) -> None:
    await api.store.postmortems.add_action_item(
        pm_id, description=description, owner=owner, due_date=due, priority=Priority.HIGH, status=status, now=NOW
    )


async def private_report(api: Api, incident: str) -> str:
    pm, _ = await api.store.postmortems.create_if_absent(
        new_postmortem(pagerduty_event(incident).incident, team="secret")
    )
    await api.store.postmortems.update(
        pm.id, pm.version, PostmortemChanges(visibility=Visibility.PRIVATE, author="ann@example.com"), NOW
    )
    return pm.id


def rows_of(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r"<tr[^>]*>.*?</tr>", body, re.S)


async def test_the_board_shows_what_the_caller_may_see_filtered_and_flagged(api: Api) -> None:
    pay = await report(api, "PBOARDA", "payments", published=False, cause="capacity")
    search = await report(api, "PBOARDB", "search", published=False)
    hidden = await private_report(api, "PBOARDC")
    await item(api, pay, "Add a canary", "alice@example.com", NOW.date() - timedelta(days=3), ActionItemStatus.OPEN)
    await item(api, pay, "Write the runbook", "bob@example.com", NOW.date() + timedelta(days=9), ActionItemStatus.OPEN)
    await item(api, search, "Raise the pool", "alice@example.com", date(2020, 1, 1), ActionItemStatus.COMPLETED)
    await item(api, hidden, "Secret fix", "alice@example.com", date(2020, 1, 1), ActionItemStatus.OPEN)

    assert (await api.http.get("/action-items")).status_code == 401  # the sign-in page
    await sign_in_as(api, "viewer@example.com")
    page = await api.http.get("/action-items")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    rows = rows_of(page.text)
    assert len(rows) == 3 and "Secret fix" not in page.text  # the private report is not the viewer's
    [late] = [r for r in rows if "Add a canary" in r]
    assert 'class="overdue"' in late and "overdue</span>" in late
    assert all('class="overdue"' not in r for r in rows if "Add a canary" not in r)  # completed: not overdue
    assert f'href="/postmortems/{pay}"' in late and 'aria-current="page"' in page.text

    async def shown(**params: str) -> set[str]:
        answer = await api.http.get("/action-items", params=params)
        assert answer.status_code == 200
        return {d for r in rows_of(answer.text) for d in re.findall(r"<td data-label=\"Description\">([^<]+)", r)}

    assert await shown(owner="alice@example.com") == {"Add a canary", "Raise the pool"}
    assert await shown(team="payments") == {"Add a canary", "Write the runbook"}
    assert await shown(status="COMPLETED") == {"Raise the pool"}
    assert await shown(overdue="1") == {"Add a canary"}
    assert await shown(status="NOT_A_STATUS") == {"Add a canary", "Write the runbook", "Raise the pool"}

    filtered = await api.http.get("/action-items", params={"team": "payments"})
    csv_link = re.search(r'href="(/action-items\.csv[^"]*)"', filtered.text)
    assert csv_link and "team=payments" in csv_link.group(1)
    exported = await api.http.get(csv_link.group(1).replace("&amp;", "&"))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    listed = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["description"] for r in listed} == {"Add a canary", "Write the runbook"}
    assert {r["overdue"] for r in listed if r["description"] == "Add a canary"} == {"True"}


async def test_the_board_pages_through_many_items(api: Api) -> None:
    pm = await report(api, "PBOARDP", "payments", published=False)
    for n in range(53):
        await item(api, pm, f"Item {n:02d}", "o@example.com", NOW.date() + timedelta(days=n), ActionItemStatus.OPEN)
    await sign_in_as(api, "viewer@example.com")
    first = await api.http.get("/action-items")
    assert len(rows_of(first.text)) == 50 and "Page 1 of 2" in first.text
    following = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert following
    second = await api.http.get(following.group(1).replace("&amp;", "&"))
    assert len(rows_of(second.text)) == 3 and "Page 2 of 2" in second.text and 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text
    beyond = await api.http.get("/action-items", params={"page": "99"})
    assert "Page 2 of 2" in beyond.text  # the last page, not an empty one
    zh = await api.http.get("/action-items", headers={"Accept-Language": "zh-CN"})
    assert "全部复盘的改进项" in zh.text and "第 1 页，共 2 页" in zh.text


async def test_the_metrics_page_draws_the_api_figures(api: Api) -> None:
    a = await report(api, "PINSA", "payments", published=True, cause="change_management")
    await report(api, "PINSB", "payments", published=False, cause="change_management")
    await report(api, "PINSC", "search", published=True, cause="capacity")
    await private_report(api, "PINSD")
    await item(api, a, "Canary deploys", "alice", NOW.date() - timedelta(days=1), ActionItemStatus.OPEN)
    await api.store.follow_ups.record(a, 90, {"verdict": {"worked": False}}, NOW)

    assert (await api.http.get("/insights")).status_code == 401
    await sign_in_as(api, "viewer@example.com")
    page = await api.http.get("/insights")
    assert page.status_code == 200, page.text
    html = page.text
    expected = (await api.http.get("/api/metrics", headers=api.auth(Role.VIEWER))).json()
    assert expected["postmortems_created"] == 3  # the private report is counted for nobody but its readers
    assert "<dd>3</dd>" in html and "<dd>66.7%</dd>" in html  # created; completion 2 of 3
    assert "<dd>100.0%</dd>" in html  # recurrence: the one judged follow-up found it back
    assert '<a href="/action-items?overdue=1">1</a>' in html
    assert html.count('<svg class="chart"') == 5 and html.count('role="img"') == 5
    titles = re.findall(r'<title id="(chart-\d+-t)">', html)
    assert len(titles) == 5 and all(f'aria-labelledby="{t} ' in html for t in titles)
    assert "Change management" in html and "pig208" in html  # cause categories (in words), affected services
    assert '<th scope="row">Change management</th><td>2</td>' in html  # the data table beside the chart
    assert '<th scope="row">search</th><td>100.0%</td>' in html  # completion by team
    assert "<script" not in html.split("<main", 1)[1]
    only_search = await api.http.get("/insights", params={"team": "search"})
    assert '<th scope="row">Capacity</th><td>1</td>' in only_search.text and "Change management" not in only_search.text
    bad = await api.http.get("/insights", params={"from": "yesterday"})
    assert bad.status_code == 422 and "is not a date" in bad.text
    zh = await api.http.get("/insights", headers={"Accept-Language": "zh"})
    assert "复盘指标" in zh.text and "每月发现与恢复用时" in zh.text
    assert '<th scope="row">变更管理</th><td>2</td>' in zh.text, "cause categories in the page's language"


async def test_the_months_have_their_own_figures(api: Api) -> None:
    for incident, when in (("PMONA", "2026-01-10T08:00:00Z"), ("PMONB", "2026-03-02T08:00:00Z")):
        await api.store.postmortems.create_if_absent(
            new_postmortem(pagerduty_event(incident, created_at=when).incident, team="payments")
        )
    await sign_in_as(api, "admin@example.com", Role.ADMIN)
    html = (await api.http.get("/insights")).text
    months = re.findall(r'<th scope="row">(\d{4}-\d{2})</th>', html)
    assert months[:3] == ["2026-01", "2026-02", "2026-03"]  # February: a gap, no figure
    assert re.search(r'<th scope="row">2026-02</th>(<td>—</td>)+</tr>', html)
