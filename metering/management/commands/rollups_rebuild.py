from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from metering.models import Meter
from metering.services.rollups import rollups_rebuild
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Rebuild hourly rollups from raw events (all meters, or --meter CODE) in one or every tenant."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument("--meter", help="meter code (default: every meter)")

    def handle(self, *args, **options):
        tenants = Tenant.objects.exclude(schema_name="public")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
        for tenant in tenants:
            with tenant_context(tenant):
                ids = (
                    list(Meter.objects.filter(code=options["meter"]).values_list("id", flat=True))
                    if options["meter"]
                    else None
                )
                written = rollups_rebuild(meter_ids=ids)
            self.stdout.write(f"{tenant.slug}: {written} rollup rows rebuilt")
