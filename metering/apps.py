from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Metering"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        import metering.metrics  # noqa: F401  (every process exposes the metering metrics)
        from metering.models import Meter

        auditlog.register(Meter)
