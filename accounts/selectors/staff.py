from __future__ import annotations

from enum import Enum
from types import SimpleNamespace

from allauth.account.internal.flows.login import get_authentication_records
from allauth.mfa.utils import is_mfa_enabled
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest


class StaffAccess(Enum):
    GRANTED = "granted"
    ANONYMOUS = "anonymous"
    NOT_STAFF = "not_staff"
    MFA_NOT_ENROLLED = "mfa_not_enrolled"
    MFA_NOT_VERIFIED = "mfa_not_verified"


def staff_session_access_get(*, user, session: SessionBase) -> StaffAccess:
    """Staff power needs an active user with a staff role who has TOTP enrolled and whose session
    passed the second factor (allauth records the methods a session authenticated with). The
    same check serves the admin and staff pages (browser session), the API (browser session, or
    the headless session a JWT belongs to) and the websocket."""
    if user is None or not user.is_authenticated:
        return StaffAccess.ANONYMOUS
    if not (user.is_active and user.is_staff):
        return StaffAccess.NOT_STAFF
    if not is_mfa_enabled(user, types=["totp"]):
        return StaffAccess.MFA_NOT_ENROLLED
    records = get_authentication_records(SimpleNamespace(session=session), user)
    if not any(record.get("method") == "mfa" for record in records):
        return StaffAccess.MFA_NOT_VERIFIED
    return StaffAccess.GRANTED


def staff_access_get(request: HttpRequest) -> StaffAccess:
    """Staff pages: the request's signed-in user and session (staff_session_access_get)."""
    return staff_session_access_get(user=request.user, session=request.session)
