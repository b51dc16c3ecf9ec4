from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from accounts.services.api_key import APIKeyError, apikey_create
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create an API key in a tenant and print it (it is shown once and stored only hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated: ingest,read,write")

    def handle(self, *args, **options):
        try:
            tenant = Tenant.objects.exclude(schema_name="public").get(slug=options["tenant"])
        except Tenant.DoesNotExist as exc:
            raise CommandError(f"no tenant with slug {options['tenant']!r}") from exc
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        with tenant_context(tenant):
            try:
                created = apikey_create(name=options["name"], scopes=scopes, actor=None)
            except APIKeyError as exc:
                raise CommandError(str(exc)) from exc
        self.stderr.write(f"API key {created.api_key.prefix}… ({', '.join(created.api_key.scopes)}); store it now:")
        self.stdout.write(created.secret)
