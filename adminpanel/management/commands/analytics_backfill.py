"""`manage.py analytics_backfill --tenant <slug> [--from YYYY-MM-DD] [--to YYYY-MM-DD]`: the
revenue snapshots of a range of days (default: the last 365 days to today), the rows beat keeps
for today and yesterday."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import tenant_context

from adminpanel.analytics import revenue_data_load, revenue_snapshot_take
from tenants.cli import command_tenant


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Compute the revenue analytics snapshots of a tenant for a range of days."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--from", dest="start", help="first day (default: 365 days before --to)")
        parser.add_argument("--to", dest="end", help="last day (default: today, UTC)")

    def handle(self, *args, **options):
        tenant = command_tenant(options["tenant"])
        end = _day(options["end"]) if options["end"] else timezone.now().date()
        start = _day(options["start"]) if options["start"] else end - timedelta(days=365)
        if start > end:
            raise CommandError("--from is after --to")
        with tenant_context(tenant):
            data = revenue_data_load()  # one read: the facts are the same for every day
            rows = 0
            day = start
            while day <= end:
                rows += revenue_snapshot_take(day=day, data=data)
                day += timedelta(days=1)
        self.stdout.write(f"{tenant.slug}: {rows} snapshot rows for {start} to {end}")
