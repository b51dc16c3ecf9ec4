"""The tenant's dunning policy written through the API (the admin edits the same row, and plan or
organization overrides, with its own forms). One row with no plan and no organization; none at all
means the built-in defaults, which the API reads back as they are."""

from __future__ import annotations

from django.db import transaction

from accounts.audit import Actor, audit_actor, audit_event
from dunning.models import DunningPolicy

FIELDS = (
    "retry_days",
    "retry_hard_declines",
    "retry_on_method_change",
    "plan_changes_blocked_day",
    "suspend_day",
    "final_day",
    "final_action",
    "email_days",
    "pre_due_reminder_days",
)


def dunning_policy_get() -> DunningPolicy:
    """The tenant's policy row, or an unsaved one holding the defaults."""
    return DunningPolicy.objects.filter(plan=None, organization=None).first() or DunningPolicy()


def dunning_policy_set(*, actor: Actor, values: dict) -> DunningPolicy:
    """Replace the tenant's policy with `values` (every field of FIELDS, already validated), audited
    with the values before and after. Plan and organization overrides are left as they are."""
    with audit_actor(actor), transaction.atomic():
        row = DunningPolicy.objects.select_for_update().filter(plan=None, organization=None).first()
        before = {name: getattr(row or DunningPolicy(), name) for name in FIELDS}
        row = row or DunningPolicy()
        for name in FIELDS:
            setattr(row, name, values[name])
        row.save()
        audit_event(
            row,
            event="dunning.policy_set",
            **{name: (before[name], values[name]) for name in FIELDS if before[name] != values[name]},
        )
    return row
