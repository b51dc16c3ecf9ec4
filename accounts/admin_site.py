from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from accounts.selectors.staff import StaffAccess, staff_access_get


class StaffAdminSite(admin.AdminSite):
    site_header = "Billing administration"
    site_title = "Billing admin"
    index_title = "Tenant administration"

    def has_permission(self, request) -> bool:
        # The middleware redirects first; this keeps the admin closed even if it is mounted elsewhere.
        return staff_access_get(request) is StaffAccess.GRANTED

    def get_app_list(self, request, app_label=None):
        # dj-stripe's 40-odd mirrors of Stripe objects are not finance's daily work: left out of
        # the index and the sidebar (its own app page, /admin/djstripe/, still lists them for
        # owners, who alone may see them).
        apps = super().get_app_list(request, app_label)
        return apps if app_label else [app for app in apps if app["app_label"] != "djstripe"]

    def login(self, request, extra_context=None):
        # One sign-in for everyone (allauth, with its second factor), not the admin's own form.
        query = urlencode({"next": request.GET.get("next", reverse("admin:index"))})
        return HttpResponseRedirect(f"{reverse('account_login')}?{query}")
