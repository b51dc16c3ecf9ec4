"""What the OpenAPI schema (drf-spectacular) needs beyond the views' own declarations: the
authentication schemes, the shared error shape and the AutoSchema that adds the common errors."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


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


# ---------------------------------------------------------------------------------------------
# The error shape every API answer shares (config.api_errors), as one component, and the 4xx
# answers every operation can give, added to each operation so /api/schema/ lists them.


class ErrorFieldProblem(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Stable and machine-readable, e.g. `validation_error`, `not_found`.")
    message = serializers.CharField(help_text="For a developer; may change.")
    fields = serializers.DictField(
        child=ErrorFieldProblem(many=True),
        required=False,
        help_text="With `validation_error`: the problems of each field, by its dotted path.",
    )
    request_id = serializers.CharField(required=False, help_text="With `internal_error`: quote it to support.")


class Error(serializers.Serializer):
    error = ErrorDetail()


def errors(described: dict[int, str]) -> dict[int, OpenApiResponse]:
    """Error answers an operation gives besides the ones every operation can give (ApiAutoSchema):
    `{409: "`invoice_not_final`, ..."}` (the text names the codes) → entries for extend_schema's
    `responses`."""
    return {status_code: OpenApiResponse(Error, description=text) for status_code, text in described.items()}


# What any operation behind AccessPermission can answer, whatever it does.
_ALWAYS = {
    400: "`invalid_parameter` (a NUL character in the path or a query parameter), or another stable code "
    "for a parameter or body the operation refuses",
    401: "`not_authenticated`, `authentication_failed`, `invalid_api_key`, `invalid_token`",
    403: "`permission_denied` (scope, staff role or customer membership), `mfa_required`",
}
_WITH_PATH = {404: "`not_found`: nothing at this path the caller may see"}
_WITH_BODY = {
    413: "`payload_too_large`",
    415: "`unsupported_media_type`: send `application/json`",
}


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, with the error answers every operation can give: 400, 401 and
    403 everywhere, 404 where the path names something, 413 and 415 where a body is read. An
    operation declares its other errors with `errors(...)` in its `responses`; what it declares
    wins."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        common = dict(_ALWAYS)
        if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
            common.update(_WITH_PATH)
        if "requestBody" in operation:
            common.update(_WITH_BODY)
        responses = operation["responses"]
        for status_code, description in common.items():
            if str(status_code) not in responses:
                responses[str(status_code)] = self._get_response_for_code(
                    OpenApiResponse(Error, description=description), str(status_code)
                )
        operation["responses"] = dict(sorted(responses.items()))
        return operation
