"""The 90-day verdict finds recurrences with the draft's own similarity (the store's full-text search),
on both databases: a later report sharing a service or the cause category is one; a later report
that only shares words of the title, or an earlier one, is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.testing import ActivityEnvironment

from postmortem.activities.tickets import FollowUpCheckInput, TicketActivities
from postmortem.models import CauseCategory, Status, Visibility
from postmortem.store.postmortems import PostmortemChanges
from postmortem.store.store import Store
from tests.factories import new_postmortem, pagerduty_event

PUBLISHED = datetime(2026, 1, 10, tzinfo=UTC)


async def _report(
    store: Store,
    incident_id: str,
    title: str,
    services: list[str],
    created_at: datetime,
    cause: CauseCategory | None = None,
    visibility: Visibility | None = None,
) -> str:
    new = new_postmortem(pagerduty_event(incident_id).incident, created_at=created_at)
    new = new.model_copy(update={"title": title, "metrics": new.metrics.model_copy(update={"services": services})})
    pm, _ = await store.postmortems.create_if_absent(new)
    changes = PostmortemChanges()
    if cause:
        changes.cause_category = cause
    if visibility:
        changes.visibility = visibility
    await store.postmortems.update(pm.id, pm.version, changes, created_at)
    return pm.id


async def test_recurrences_are_similar_reports_since_publishing(any_store: Store) -> None:
    judged = await _report(
        any_store, "PJUDGED", "Checkout errors after a DNS change", ["checkout"], PUBLISHED - timedelta(days=2),
        CauseCategory.CONFIGURATION,
    )  # fmt: skip
    await any_store.postmortems.set_status(judged, Status.PUBLISHED, PUBLISHED)
    same_service = await _report(any_store, "PAGAIN", "Checkout slow", ["checkout"], PUBLISHED + timedelta(days=20))
    same_cause = await _report(
        any_store, "PCAUSE", "Search outage", ["search"], PUBLISHED + timedelta(days=30), CauseCategory.CONFIGURATION
    )
    private = await _report(
        any_store, "PPRIV", "Checkout down", ["checkout"], PUBLISHED + timedelta(days=40), visibility=Visibility.PRIVATE
    )
    await _report(any_store, "PWORDS", "DNS change errors", ["ledger"], PUBLISHED + timedelta(days=25))
    await _report(any_store, "PBEFORE", "Checkout errors", ["checkout"], PUBLISHED - timedelta(days=60))
    await _report(any_store, "POTHER", "Ledger batch late", ["ledger"], PUBLISHED + timedelta(days=50))

    activities = TicketActivities(any_store)
    try:
        check = await ActivityEnvironment().run(
            activities.follow_up_check,
            FollowUpCheckInput(
                postmortem_id=judged, day=90, published_at=PUBLISHED, final=True, now=PUBLISHED + timedelta(days=90)
            ),
        )
    finally:
        await activities.aclose()
    assert check.verdict is not None and check.verdict["worked"] is False
    # the system's own judgement counts every report (a private one too), as before
    recurrences = check.verdict["recurrences"]
    assert isinstance(recurrences, list) and set(recurrences) == {same_service, same_cause, private}
