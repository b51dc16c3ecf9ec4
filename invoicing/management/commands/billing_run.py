"""`manage.py billing_run --tenant <slug> [--at <instant>] [--dry-run]`: the billing run of one
tenant, the same service beat calls, with a progress bar on a terminal."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from invoicing.services.billing_run import CHUNK_SIZE, billing_run
from tenants.cli import command_instant, command_tenant


class Command(BaseCommand):
    help = "Invoice every due bill point of a tenant's subscriptions and finalize drafts past their grace period."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--at", help="bill as of this instant (RFC 3339 with an offset), e.g. to travel in time")
        parser.add_argument("--dry-run", action="store_true", help="compute the invoices, write nothing")
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="subscriptions per transaction")

    def handle(self, *args, **options):
        tenant = command_tenant(options["tenant"])
        at = command_instant(options["at"])
        show = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if show:
                width = 40
                filled = width * done // max(total, 1)
                sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} subscriptions")
                sys.stderr.flush()

        with tenant_context(tenant):
            result = billing_run(at=at, dry_run=options["dry_run"], progress=progress, chunk_size=options["chunk_size"])
        if show:
            sys.stderr.write("\n")
        verb = "would create" if result.dry_run else "created"
        self.stdout.write(
            f"{tenant.slug}: {result.subscriptions} subscriptions, {result.bill_points} bill points, "
            f"{verb} {len(result.drafts) if result.dry_run else result.invoices_created} invoices, "
            f"finalized {result.finalized}, held {result.held}, billing problems {result.problems}"
        )
        for draft in result.drafts:
            self.stdout.write(f"  subscription {draft.subscription_id} at {draft.point.isoformat()}: {draft.total}")
