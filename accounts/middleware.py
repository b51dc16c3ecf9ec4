from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse

from accounts.selectors.staff import StaffAccess, staff_access_get

STAFF_PREFIXES = ("/admin/", "/staff/")


class StaffAccessMiddleware:
    """Guards the Django admin and the staff pages: sign-in, a staff role and TOTP, or no entry."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(STAFF_PREFIXES) and getattr(request, "tenant", None) is not None:
            access = staff_access_get(request)
            query = urlencode({"next": request.get_full_path()})
            if access is StaffAccess.ANONYMOUS:
                return HttpResponseRedirect(f"{reverse('account_login')}?{query}")
            if access is StaffAccess.NOT_STAFF:
                raise PermissionDenied("Staff only.")  # the site's 403 page
            if access is StaffAccess.MFA_NOT_ENROLLED:
                messages.warning(request, "Staff accounts need an authenticator app: set it up to continue.")
                return HttpResponseRedirect(f"{reverse('mfa_activate_totp')}?{query}")
            if access is StaffAccess.MFA_NOT_VERIFIED:
                return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return self.get_response(request)
