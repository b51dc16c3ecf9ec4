from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Metering"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from metering.models import Meter

        auditlog.register(Meter)
