"""`manage.py dunning_run --tenant <slug> [--at <instant>]`: the dunning run of one tenant, the
same service beat calls hourly."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from dunning.services.run import dunning_run
from tenants.cli import command_instant, command_tenant


class Command(BaseCommand):
    help = "Take the due dunning steps of a tenant (retries, emails, stages) and move organizations' states."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--at", help="run as of this instant (RFC 3339 with an offset), e.g. to travel in time")

    def handle(self, *args, **options):
        tenant = command_tenant(options["tenant"])
        at = command_instant(options["at"])
        with tenant_context(tenant):
            result = dunning_run(at=at)
        self.stdout.write(
            f"{tenant.slug}: {result.cases_opened} cases opened, {result.cases_closed} closed, "
            f"{result.retries} retries, {result.emails} emails, {result.stages} stages, "
            f"{len(result.transitions)} transitions"
        )
        for customer, before, after in result.transitions:
            self.stdout.write(f"  {customer}: {before} -> {after}")
