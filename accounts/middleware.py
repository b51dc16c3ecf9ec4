from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse

from accounts.selectors.staff import StaffAccess, staff_access_get

STAFF_PREFIXES = ("/admin/", "/staff/")
# Where a signed-in user grants an OAuth2 client access (allauth.idp.oidc). A token granted by a
# staff user carries staff power and cannot tell later how its grant was made, so staff grant only
# from a session that passed the second factor; customer members pass through.
OAUTH_GRANT_PATHS = ("/identity/o/authorize", "/identity/o/device")


class StaffAccessMiddleware:
    """Guards the Django admin and the staff pages (sign-in, a staff role and TOTP, or no entry),
    and the OAuth2 consent pages for staff users (TOTP)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if getattr(request, "tenant", None) is None:
            return self.get_response(request)
        if request.path.startswith(STAFF_PREFIXES):
            access = staff_access_get(request)
            if access is StaffAccess.ANONYMOUS:
                query = urlencode({"next": request.get_full_path()})
                return HttpResponseRedirect(f"{reverse('account_login')}?{query}")
            if access is StaffAccess.NOT_STAFF:
                raise PermissionDenied("Staff only.")  # the site's 403 page
            if access is not StaffAccess.GRANTED:
                return self._second_factor(request, access)
        elif request.path.startswith(OAUTH_GRANT_PATHS) and request.user.is_authenticated and request.user.is_staff:
            access = staff_access_get(request)
            if access is not StaffAccess.GRANTED:
                return self._second_factor(request, access)
        return self.get_response(request)

    @staticmethod
    def _second_factor(request, access: StaffAccess):
        query = urlencode({"next": request.get_full_path()})
        if access is StaffAccess.MFA_NOT_ENROLLED:
            messages.warning(request, "Staff accounts need an authenticator app: set it up to continue.")
            return HttpResponseRedirect(f"{reverse('mfa_activate_totp')}?{query}")
        return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
