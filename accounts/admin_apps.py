from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """The Django admin, served by a site that requires a staff role and a second factor."""

    default_site = "accounts.admin_site.StaffAdminSite"
