"""The pages across reports: the action-item board (`/action-items`) and the metrics (`/insights`;
`/metrics` is Prometheus's).

Each reads through the JSON API's own code with the caller the page resolved: the board calls the
route function of `GET /api/action-items` for one page (`limit`/`offset`: its rows, and its CSV, are
the API's) and counts its totals in SQL, the metrics page
the same store queries as `GET /api/metrics` (`store.metrics`, in SQL), once over all the reports and
grouped by month of the incidents' start for the charts over time. So neither page shows a report the caller may
not see.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from postmortem.api import action_items as action_items_api
from postmortem.api.services import get_services
from postmortem.models import ActionItemStatus
from postmortem.store.listing import PostmortemFilter
from postmortem.web.charts import Series, bar_chart, line_chart
from postmortem.web.i18n import translator, ui_language
from postmortem.web.routes import _datetime, _signed_in, error_page, page
from postmortem.web.session import PageError

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MONTHS = 18  # the charts over time show at most this many months, the newest


def _board_filters(request: Request) -> dict[str, Any]:
    query = request.query_params
    status = query.get("status") or None
    return {
        "status": ActionItemStatus(status) if status in {s.value for s in ActionItemStatus} else None,
        "owner": (query.get("owner") or "").strip() or None,
        "team": (query.get("team") or "").strip() or None,
        "overdue": query.get("overdue") in ("1", "true", "on"),
    }


def _page_number(value: str | None) -> int:
    try:
        return max(int(value or 1), 1)
    except ValueError:
        return 1


@router.get("/action-items", response_class=HTMLResponse)
async def board(request: Request) -> Response:
    services = await get_services(request)
    try:
        who = await _signed_in(request, services)
        filters = _board_filters(request)
        total, overdue_count = await action_items_api.count_action_items(services.store, who.token, **filters)
        pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        number = min(_page_number(request.query_params.get("page")), pages)
        rows = await action_items_api.all_action_items(
            services.store,
            services,
            who.token,
            format="json",
            priority=None,
            due_from=None,
            due_to=None,
            limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE,
            **filters,
        )
    except PageError as refused:
        return error_page(request, services, refused)
    assert isinstance(rows, list)
    kept = {k: v for k, v in request.query_params.items() if k != "page" and v}

    def at(n: int) -> str:
        return "/action-items?" + urlencode({**kept, "page": str(n)})

    return page(
        request,
        services,
        "board.html",
        {
            "rows": rows,
            "total": total,
            "overdue_count": overdue_count,
            "query": dict(request.query_params),
            "statuses": [s.value for s in ActionItemStatus],
            "page_number": number,
            "pages": pages,
            "prev_url": at(number - 1) if number > 1 else None,
            "next_url": at(number + 1) if number < pages else None,
            "csv_url": "/action-items.csv" + ("?" + urlencode({k: v for k, v in kept.items()}) if kept else ""),
            "report_href": lambda pm_id: f"/postmortems/{quote(pm_id, safe='')}",
        },
        who=who,
    )


@router.get("/action-items.csv")
async def board_csv(request: Request) -> Response:
    """The board's rows as the API's CSV (`GET /api/action-items?format=csv`), for a signed-in browser."""
    services = await get_services(request)
    try:
        who = await _signed_in(request, services)
        exported = await action_items_api.all_action_items(
            services.store,
            services,
            who.token,
            format="csv",
            priority=None,
            due_from=None,
            due_to=None,
            limit=None,
            offset=0,
            **_board_filters(request),
        )
    except PageError as refused:
        return error_page(request, services, refused)
    assert isinstance(exported, Response)
    return exported


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


@router.get("/insights", response_class=HTMLResponse)
async def insights(request: Request) -> Response:
    services = await get_services(request)
    query = request.query_params
    try:
        who = await _signed_in(request, services)
        created_from = _datetime(query.get("from"))
        created_to = _datetime(query.get("to"))
        if created_to is not None and len(query.get("to", "")) == 10:
            created_to += timedelta(days=1)  # a date "to" includes that day
        filters = PostmortemFilter(
            viewer=who.reader,
            team=(query.get("team") or "").strip() or None,
            service=(query.get("service") or "").strip() or None,
            created_from=created_from,
            created_to=created_to,
        )
    except PageError as refused:
        return error_page(request, services, refused)
    now = datetime.now(UTC)
    metrics = await services.store.metrics.program(filters, now)
    labels, monthly = await services.store.metrics.monthly(filters, now, MONTHS)
    t = translator(ui_language(request))
    times = [
        Series(t["ttd_median"], [_minutes(m.time_to_detect_seconds.median) for m in monthly]),
        Series(t["ttr_median"], [_minutes(m.time_to_resolve_seconds.median) for m in monthly]),
    ]
    rates = [
        Series(t["completion_rate"], [_percent(m.completion_rate) for m in monthly]),
        Series(t["on_time_rate"], [m.action_items_completed_on_time_percent for m in monthly]),
        Series(t["recurrence_rate"], [_percent(m.recurrence_rate) for m in monthly]),
    ]
    team_rates = {team: round(rate * 100, 1) for team, rate in metrics.team_completion_rates.items()}
    causes: dict[str, float] = {t.get(f"cause_{name}", name): count for name, count in metrics.cause_categories.items()}
    charts = {
        "times": line_chart(t["chart_times"], t["chart_times_desc"], labels, times, t["min_unit"]),
        "rates": line_chart(t["chart_rates"], t["chart_rates_desc"], labels, rates, "%", top=100),
        "causes": bar_chart(t["chart_causes"], t["chart_causes_desc"], causes),
        "services": bar_chart(t["chart_services"], t["chart_services_desc"], dict(metrics.most_affected_services)),
        "teams": bar_chart(
            t["chart_teams"],
            t["chart_teams_desc"],
            team_rates,
            "%",
            top=100,
        ),
    }
    return page(
        request,
        services,
        "insights.html",
        {
            "m": metrics,
            "labels": labels,
            "times": times,
            "rates": rates,
            "charts": charts,
            "query": dict(query),
            "percent": _percent,
            "team_rates": team_rates,
            "causes": causes,
        },
        who=who,
    )
