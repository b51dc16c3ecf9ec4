from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.BearerAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`bk_…`), an OAuth2 access token (client credentials, or "
            "authorization code: never more than its user may do), or a JWT from a user API session; "
            "each is valid only on the tenant that issued it. Staff need a session that passed the "
            "second factor (403 `mfa_required` otherwise).",
        }


class SessionPrincipalScheme(SessionScheme):
    """The portal's browser session (cookie), as drf-spectacular describes DRF's own."""

    target_class = "accounts.api.authentication.SessionPrincipalAuthentication"
