"""The worker's clients of the outside world, from the settings: built at start-up, closed at shutdown.

One `OutsideClients` (activities/clients.py) per worker process: one `httpx.AsyncClient` per
configured outside system, all on one TLS context, shared by every activity class of the worker
(and by every worker `SupervisedWorker` rebuilds). A system the settings do not configure gets no
client. `postmortem worker` (and so `postmortem dev`'s worker process) opens them with
`worker_clients` around the worker's whole life.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from postmortem.activities.clients import OutsideClients
from postmortem.app.settings import Settings


def outside_clients(settings: Settings) -> OutsideClients:
    """One client per outside system the settings configure; the caller closes them (`aclose`)."""
    s = settings
    return OutsideClients.configured(
        pagerduty=s.pagerduty,
        opsgenie=s.opsgenie,
        jsm=s.jsm,
        slack=s.slack,
        caldav=s.caldav,
        tickets=s.tickets,
        smtp=s.smtp,
        http=s.http,
        llm=s.llm,
    )


@contextlib.asynccontextmanager
async def worker_clients(settings: Settings) -> AsyncIterator[OutsideClients]:
    """The worker's clients for the duration of the block, closed (their connections with them) after."""
    clients = outside_clients(settings)
    try:
        yield clients
    finally:
        await clients.aclose()
