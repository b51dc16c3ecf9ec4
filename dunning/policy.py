"""The dunning policy as the run reads it: the built-in defaults (from what Stripe, Kill Bill and
Chargebee publish), the tenant's row, or an override for the invoice's plan or its organization
(the organization's first)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RETRY_DAYS = (1, 3, 5, 7, 10, 14)
DEFAULT_EMAIL_DAYS = (0, 3, 7, 12, 14)
# Days before the default card expires to warn the organization (once per card and threshold;
# every tenant, not a policy setting: a card's expiry is not an overdue invoice's).
CARD_EXPIRY_WARNING_DAYS = (30, 7)

PLAN_CHANGES = "plan_changes"
USAGE = "usage"


@dataclass(frozen=True)
class Policy:
    retry_days: tuple[int, ...] = DEFAULT_RETRY_DAYS
    retry_hard_declines: bool = False
    retry_on_method_change: bool = True
    plan_changes_blocked_day: int = 10  # full access through day 9
    suspend_day: int = 14
    final_day: int = 30
    final_action: str = "cancel_at_period_end"
    email_days: tuple[int, ...] = DEFAULT_EMAIL_DAYS
    # Days before the due date to remind a customer who pays by hand; None: no reminder (the
    # default: Stripe and Chargebee leave it to the seller to switch on).
    pre_due_reminder_days: int | None = None

    @property
    def notice_days(self) -> tuple[int, ...]:
        """The days an email goes out: the reminders, the suspension and the final action (one
        email a day: a reminder on the suspension's day is the suspension notice)."""
        return tuple(sorted({*self.email_days, self.suspend_day, self.final_day}))

    def email_kind(self, day: int) -> str:
        if day >= self.final_day:
            return "final"
        if day >= self.suspend_day:
            return "suspended"
        if day == 0:
            return "failed"
        return "reminder"

    def stage(self, day: int) -> str:
        if day >= self.final_day:
            return "final"
        if day >= self.suspend_day:
            return "suspended"
        if day >= self.plan_changes_blocked_day:
            return "restricted"
        return "past_due"


DEFAULT = Policy()


def policy_from_row(row) -> Policy:
    return Policy(
        retry_days=tuple(sorted(int(d) for d in row.retry_days)),
        retry_hard_declines=row.retry_hard_declines,
        retry_on_method_change=row.retry_on_method_change,
        plan_changes_blocked_day=row.plan_changes_blocked_day,
        suspend_day=row.suspend_day,
        final_day=row.final_day,
        final_action=row.final_action,
        email_days=tuple(sorted(int(d) for d in row.email_days)),
        pre_due_reminder_days=row.pre_due_reminder_days,
    )
