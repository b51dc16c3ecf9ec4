"""Re-encrypt stored secrets under the first FIELD_ENCRYPTION_KEYS key, in every tenant (run after
putting a new key first; then the old key can be dropped)."""

from django.core.management.base import BaseCommand
from django_tenants.utils import get_public_schema_name, get_tenant_model, tenant_context

from core.services.webhook_endpoint import webhook_secrets_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt stored secrets (webhook endpoints) under the current first encryption key."

    def handle(self, *args: object, **options: object) -> None:
        total = 0
        for tenant in get_tenant_model().objects.exclude(schema_name=get_public_schema_name()):
            with tenant_context(tenant):
                total += webhook_secrets_reencrypt()
        self.stdout.write(f"{total} endpoint secret(s) re-encrypted")
