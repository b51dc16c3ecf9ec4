"""The one domain error: its hierarchy, the API's rendering of it, and codes that never come from
translated messages."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.exceptions import ValidationError as DrfValidationError

from accounts.api.authentication import CredentialError
from accounts.services.api_key import APIKeyError
from billing.admin.plans import PreviewError
from billing.bill import BillPricingError
from billing.pricing import PriceValidationError, PricingError, PricingInputError
from config.api_errors import exception_handler
from core.errors import DomainError, domain_error_from_validation
from core.services.webhook_http import TargetRefused
from invoicing.tax import TaxError, TaxErrorCode
from metering.ingest import BodyError
from metering.meters import MeterDefinitionError
from tenants.services.tenant_provision import InvalidTenantError, TemplateStaleError, TenantExistsError


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (PriceValidationError("tiers_empty", "no tiers", "tiers"), "tiers_empty", 400),
        (PricingInputError("negative_quantity", "negative"), "negative_quantity", 422),
        (BillPricingError("cannot price"), "pricing_error", 422),
        (TaxError(TaxErrorCode.RATE_NOT_FOUND, "no rate"), "rate_not_found", 422),
        (MeterDefinitionError("invalid_path", "bad path"), "invalid_path", 400),
        (BodyError("payload_too_large", "too big", 413), "payload_too_large", 413),
        (InvalidTenantError("bad slug"), "invalid_tenant", 400),
        (TenantExistsError("taken"), "tenant_exists", 409),
        (TemplateStaleError("stale"), "template_stale", 503),
        (APIKeyError("no scopes"), "invalid_api_key_request", 400),
        (CredentialError("invalid_token", "expired"), "invalid_token", 401),
        (TargetRefused("loopback"), "webhook_target_refused", 400),
        (PreviewError("malformed_json", "not JSON"), "malformed_json", 400),
    ],
)
def test_every_domain_error_joins_the_one_hierarchy(error, code, status):
    assert isinstance(error, DomainError)
    assert (error.code, error.status_code) == (code, status)


def test_engine_errors_stay_value_errors():
    # Callers that refuse bad input with `except ValueError` keep catching them.
    assert issubclass(PricingError, ValueError) and issubclass(TaxError, ValueError)
    assert issubclass(MeterDefinitionError, ValueError)


def test_the_api_renders_the_path_when_there_is_one():
    located = exception_handler(DomainError("up_to: not ascending", code="x", path="tiers[1].up_to"), {})
    assert (located.status_code, located.data) == (
        400,
        {"error": {"code": "x", "message": "up_to: not ascending", "path": "tiers[1].up_to"}},
    )
    whole = exception_handler(DomainError("gone", code="not_found", status_code=404), {})
    assert (whole.status_code, whole.data) == (404, {"error": {"code": "not_found", "message": "gone"}})
    # The document itself ("" path) is no location either.
    document = exception_handler(PriceValidationError("not_an_object", "not an object"), {})
    assert document.data == {"error": {"code": "not_an_object", "message": "not an object"}}


def test_a_drf_validation_error_keeps_its_fields():
    response = exception_handler(DrfValidationError({"name": ["required"]}), {})
    assert response.data["error"]["fields"] == {"name": [{"code": "invalid", "message": "required"}]}


def test_uniqueness_is_recognised_by_django_code_not_by_message():
    unique = ValidationError({"code": [ValidationError("Plan with this Code already exists.", code="unique")]})
    error = domain_error_from_validation(unique, code="invalid_plan", unique_code="plan_exists")
    assert (error.code, error.path, error.message) == (
        "plan_exists",
        "code",
        "code: Plan with this Code already exists.",
    )
    # A translated message, or another rule whose text says "already exists", changes nothing.
    translated = ValidationError({"code": [ValidationError("Plan mit diesem Code existiert bereits.", code="unique")]})
    assert (
        domain_error_from_validation(translated, code="invalid_plan", unique_code="plan_exists").code == "plan_exists"
    )
    lookalike = ValidationError({"code": [ValidationError("The code already exists elsewhere.", code="invalid")]})
    assert (
        domain_error_from_validation(lookalike, code="invalid_plan", unique_code="plan_exists").code == "invalid_plan"
    )


def test_a_non_field_validation_error_has_no_path():
    error = domain_error_from_validation(
        ValidationError({"__all__": [ValidationError("both set", code="x")]}), code="invalid_coupon"
    )
    assert (error.code, error.path, error.message) == ("invalid_coupon", None, "__all__: both set")
    plain = domain_error_from_validation(ValidationError("just text"), code="invalid_meter")
    assert (plain.code, plain.path, plain.message) == ("invalid_meter", None, "just text")
