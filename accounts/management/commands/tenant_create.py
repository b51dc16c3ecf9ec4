import time

from django.core.management.base import BaseCommand, CommandError

from accounts.services.tenant_owner import tenant_create_with_owner
from tenants.services.tenant_provision import ProvisioningError


class Command(BaseCommand):
    # Here rather than in tenants: the owner account belongs to accounts, a floor above tenants.
    help = "Provision a tenant (seller workspace) by cloning the migrated template schema."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", help="defaults to the first label of --domain")
        parser.add_argument("--domain", required=True, help="e.g. acme.localhost")
        parser.add_argument("--admin-email", help="creates an owner account and prints its password once")
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--timezone", default="UTC")

    def handle(self, *args, **options):
        slug = options["slug"] or options["domain"].split(".")[0]
        started = time.monotonic()
        try:
            created = tenant_create_with_owner(
                name=options["name"],
                slug=slug,
                domain=options["domain"],
                owner_email=options["admin_email"],
                default_currency=options["currency"],
                timezone=options["timezone"],
            )
        except ProvisioningError as exc:
            raise CommandError(f"{exc.code}: {exc}") from exc
        self.stdout.write(
            f"tenant {created.tenant.slug} (schema {created.tenant.schema_name}) at {created.domain} "
            f"provisioned in {time.monotonic() - started:.2f}s"
        )
        if created.owner_email:
            self.stdout.write(f"owner: {created.owner_email}  password (shown once): {created.owner_password}")
