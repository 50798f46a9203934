"""FollowUpWorkflow: 30, 60 and 90 days after publishing, are the action items done, and did it work?

A child of PostmortemWorkflow with little code under its long timers. At each check it syncs every
item with its ticket, records the check on the report, reminds the owners of overdue or stalled
items, and at the last check judges whether the fix worked.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from postmortem.activities.review import NotifyInput, ReviewActivities
    from postmortem.activities.tickets import FollowUpCheck, FollowUpCheckInput, TicketActivities, TicketsInput

RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10))
OPTIONS = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=5), schedule_to_close_timeout=timedelta(days=1), retry_policy=RETRY
)


class FollowUpInput(BaseModel):
    postmortem_id: str
    published_at: AwareDatetime
    days: list[int] = Field(default_factory=lambda: [30, 60, 90])
    tracker: str | None = None
    accounts: dict[str, str] = Field(default_factory=dict)
    slack_channel: str | None = None


class FollowUpResult(BaseModel):
    checks: list[FollowUpCheck]


@workflow.defn(name="FollowUpWorkflow")
class FollowUpWorkflow:
    @workflow.run
    async def run(self, input: FollowUpInput) -> FollowUpResult:
        checks: list[FollowUpCheck] = []
        days = sorted(set(input.days))
        for day in days:
            due = input.published_at + timedelta(days=day)
            if due > workflow.now():
                await workflow.sleep(due - workflow.now())
            tickets = TicketsInput(
                postmortem_id=input.postmortem_id, tracker=input.tracker, accounts=input.accounts, now=workflow.now()
            )
            await workflow.execute_activity_method(TicketActivities.sync_tickets, tickets, **OPTIONS)
            check = await workflow.execute_activity_method(
                TicketActivities.follow_up_check,
                FollowUpCheckInput(
                    postmortem_id=input.postmortem_id,
                    day=day,
                    published_at=input.published_at,
                    final=day == days[-1],
                    now=workflow.now(),
                ),
                **OPTIONS,
            )
            checks.append(check)
            if check.owners_to_remind:
                late = "; ".join(check.overdue + check.stalled)
                await workflow.execute_activity_method(
                    ReviewActivities.notify,
                    NotifyInput(
                        postmortem_id=input.postmortem_id,
                        key=f"{input.postmortem_id}:followup:{day}",
                        recipients=check.owners_to_remind,
                        subject=f"Day {day} follow-up of post-mortem {input.postmortem_id}",
                        text=f"Action items overdue or stalled: {late}",
                        slack_channel=input.slack_channel,
                        now=workflow.now(),
                    ),
                    **OPTIONS,
                )
        return FollowUpResult(checks=checks)
