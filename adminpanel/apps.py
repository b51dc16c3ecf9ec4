from django.apps import AppConfig


class AdminpanelConfig(AppConfig):
    name = "adminpanel"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from adminpanel.models import ApprovalThreshold, PendingApproval, StaffNote

        auditlog.register(StaffNote)
        # The second-approver control's own changes: who set a threshold, who asked, who decided.
        auditlog.register(ApprovalThreshold, exclude_fields=["updated_at"])
        auditlog.register(PendingApproval)
