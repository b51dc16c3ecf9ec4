"""Migrate everything, in the order a deploy needs: public schema, template, then every tenant."""

import time

from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.services.tenant_provision import public_tenant_ensure, template_migrate


class Command(BaseCommand):
    help = "Migrate the public schema, the tenant template schema and every tenant schema."

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        started = time.monotonic()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        public_tenant_ensure()
        template_migrate(verbosity=verbosity)
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity)
        self.stdout.write(f"platform migrated in {time.monotonic() - started:.1f}s")
