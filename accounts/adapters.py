import time

from allauth.account import app_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.mfa.utils import is_mfa_enabled

# Ways of signing in that prove the password or the mailbox in this session (allauth's records).
_FIRST_FACTOR_METHODS = frozenset({"password", "password_reset"})


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        """Nobody signs up on their own: staff are added by an owner and customer members are
        invited to their organization, so every account belongs to someone the tenant knows."""
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """allauth asks for the password again before any authenticator change, even the first
        enrolment right after signing in (staff must enrol before anything else). Enrolling a
        first authenticator within the reauthentication window of a sign-in by password or by a
        mailed link in this session asks nothing more; changing or removing one still does."""
        required = super().is_reauthentication_required(app=app, **kwargs)
        request = self.request
        if not required or app != "allauth.mfa" or request is None:
            return required
        user = request.user
        if not user.is_authenticated or is_mfa_enabled(user):
            return required
        records = [r for r in get_authentication_records(request, user) if r.get("method") in _FIRST_FACTOR_METHODS]
        return not (records and time.time() - records[-1]["at"] < app_settings.REAUTHENTICATION_TIMEOUT)
