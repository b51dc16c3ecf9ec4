from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from metering.services.rollups import rollups_check
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Prove that stored rollups equal a fresh aggregation of raw events; exit 1 if not."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")

    def handle(self, *args, **options):
        tenants = Tenant.objects.exclude(schema_name="public")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
        failed = 0
        for tenant in tenants:
            with tenant_context(tenant):
                mismatches = rollups_check()
            for m in mismatches[:20]:
                self.stdout.write(
                    f"{tenant.slug} {m.meter} {m.customer} {m.hour:%Y-%m-%d %H}h {m.group_key}: "
                    f"stored {m.stored} fresh {m.fresh}"
                )
            self.stdout.write(f"{tenant.slug}: {'OK' if not mismatches else f'{len(mismatches)} mismatches'}")
            failed += len(mismatches)
        if failed:
            raise CommandError(f"{failed} rollup rows differ from the raw events")
