from django.apps import AppConfig


class AdminpanelConfig(AppConfig):
    name = "adminpanel"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from adminpanel.models import StaffNote

        auditlog.register(StaffNote)
