"""allauth forms, extended through ACCOUNT_FORMS (allauth's own extension point)."""

from __future__ import annotations

from allauth.account.forms import ResetPasswordKeyForm as AllauthResetPasswordKeyForm

from accounts.services.user import user_email_proven


class ResetPasswordKeyForm(AllauthResetPasswordKeyForm):
    """Setting a password from a mailed link (an invitation or "Forgot your password?") proves
    the address the link went to, so it is verified here: otherwise the first sign-in after it
    would ask to verify the email address once more."""

    def save(self):
        super().save()
        user_email_proven(user=self.user)
