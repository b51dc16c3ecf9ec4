from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # allauth 65.21.1 fails to sign JWTs ("no attribute 'serialization'") when another library
        # imported a cryptography.hazmat.primitives submodule first (STACK-NOTES); import them here.
        import cryptography.hazmat.primitives.asymmetric.rsa
        import cryptography.hazmat.primitives.ciphers
        import cryptography.hazmat.primitives.serialization  # noqa: F401
        from auditlog.registry import auditlog

        import accounts.api.schema  # noqa: F401  (registers the OpenAPI auth extension)
        from accounts.models import APIKey, User

        auditlog.register(User, exclude_fields=["password", "last_login"])
        auditlog.register(APIKey, exclude_fields=["digest", "last_used_at"])
