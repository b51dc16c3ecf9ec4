import time

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from tenants.models import Tenant


class Command(BaseCommand):
    help = "Development only: print the current TOTP code of a staff user (for the demo tenant)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--email", required=True)

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("totp_code is refused in production.")
        tenant = Tenant.objects.get(slug=options["tenant"])
        with tenant_context(tenant):
            authenticator = Authenticator.objects.filter(
                user__email=options["email"].lower(), type=Authenticator.Type.TOTP
            ).first()
            if authenticator is None:
                raise CommandError("that user has no TOTP authenticator")
            secret = decrypt(authenticator.data["secret"])
        counter = int(time.time()) // mfa_settings.TOTP_PERIOD
        self.stdout.write(format_hotp_value(hotp_value(secret, counter)))
