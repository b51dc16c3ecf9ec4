from django.apps import AppConfig


class DunningConfig(AppConfig):
    name = "dunning"

    def ready(self) -> None:
        from billing.hooks import plan_change_gate_add
        from dunning.selectors import plan_change_gate
        from dunning.services.card_expiry import card_expiry_emails_register
        from dunning.services.emails import dunning_emails_register
        from dunning.services.run import method_changed
        from payments.hooks import method_changed_hook_add

        dunning_emails_register()
        card_expiry_emails_register()
        method_changed_hook_add(method_changed)
        plan_change_gate_add(plan_change_gate)
