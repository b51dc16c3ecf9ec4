from django.apps import AppConfig


class DunningConfig(AppConfig):
    name = "dunning"

    def ready(self) -> None:
        from dunning.services.emails import dunning_emails_register

        dunning_emails_register()
