"""What billing's API answers, as serializers for the OpenAPI schema (/api/schema/).

The views build their bodies with the `*_out` functions next to them (exact decimal text,
instants as stored); these serializers describe those bodies field for field, and
tests/config/test_api_contract.py checks every answer against the schema, so the two cannot
drift apart silently. Decimals are strings: amounts with their currency's decimals ("20.00",
"323"), other decimals in plain notation ("0.0125")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import (
    BaseFeeTiming,
    BillingMode,
    CouponDuration,
    CouponTarget,
    CreditKind,
    DiscountType,
    PlanInterval,
    SubscriptionStatus,
)
from billing.pricing.schema import MODELS


@extend_schema_field({"type": "string", "format": "decimal", "example": "12.50"})
class DecimalText(serializers.CharField):
    """A decimal as a string (never a JSON number, which a reader would take as a float)."""


@extend_schema_field(
    {
        "type": "object",
        "description": "A price document (billing.pricing): `model` and the model's own fields.",
        "properties": {"model": {"type": "string", "enum": list(MODELS)}},
        "required": ["model"],
        "additionalProperties": True,
    }
)
class PriceDocument(serializers.JSONField):
    pass


# --- plans


class ChargeOut(serializers.Serializer):
    meter = serializers.CharField(help_text="the meter's code")
    name = serializers.CharField()
    price = PriceDocument()
    group_property = serializers.CharField(help_text="empty: one price for every event")
    group_prices = serializers.DictField(child=PriceDocument(), help_text="a price per value of group_property")


class PlanVersionOut(serializers.Serializer):
    version = serializers.IntegerField()
    base_fee = DecimalText()
    base_fee_timing = serializers.ChoiceField(choices=BaseFeeTiming.choices)
    trial_days = serializers.IntegerField()
    minimum_commitment = DecimalText(allow_null=True)
    created_at = serializers.DateTimeField()
    charges = ChargeOut(many=True)


class PlanOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    currency = serializers.CharField()
    interval = serializers.ChoiceField(choices=PlanInterval.choices)
    is_active = serializers.BooleanField()
    current_version = PlanVersionOut(allow_null=True, help_text="the latest version")


# --- bills (subscription changes; invoicing's previews extend the line)


class BreakdownItemOut(serializers.Serializer):
    label = serializers.CharField(help_text='the piece of the price: "units", "tier", "packages", …')
    tier = serializers.IntegerField(allow_null=True, help_text="0-based index into the price's tiers")
    quantity = DecimalText(allow_null=True)
    unit_amount = DecimalText(allow_null=True)
    flat_amount = DecimalText(allow_null=True)
    amount = DecimalText(allow_null=True)


class ProrationOut(serializers.Serializer):
    seconds = serializers.IntegerField(help_text="seconds billed")
    of = serializers.IntegerField(help_text="seconds in the whole period")


class BillLineOut(serializers.Serializer):
    kind = serializers.CharField(help_text='"base_fee", "usage", "discount", "minimum", …')
    description = serializers.CharField()
    amount = DecimalText()
    currency = serializers.CharField()
    quantity = DecimalText(allow_null=True)
    unit_amount = DecimalText(allow_null=True)
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    billing_period_start = serializers.DateTimeField()
    billing_period_end = serializers.DateTimeField()
    proration = ProrationOut(allow_null=True)
    meter = serializers.CharField(allow_null=True)
    group = serializers.CharField(allow_null=True)
    coupon_redemption = serializers.IntegerField(allow_null=True)
    discounts_line = serializers.IntegerField(allow_null=True, help_text="the position of the line a discount reduces")
    breakdown = BreakdownItemOut(many=True)


class BillOut(serializers.Serializer):
    at = serializers.DateTimeField(help_text="the bill point")
    currency = serializers.CharField()
    subtotal = DecimalText()
    lines = BillLineOut(many=True)


# --- subscriptions


class ScheduledChangeOut(serializers.Serializer):
    plan = serializers.CharField()
    plan_version = serializers.IntegerField()
    effective_at = serializers.DateTimeField()


class SubscriptionOut(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.CharField(help_text="the organization's external_id")
    plan = serializers.CharField()
    plan_version = serializers.IntegerField()
    status = serializers.ChoiceField(choices=SubscriptionStatus.choices)
    billing_mode = serializers.ChoiceField(choices=BillingMode.choices)
    billing_anchor = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    current_period_start = serializers.DateTimeField()
    current_period_end = serializers.DateTimeField()
    trial_end = serializers.DateTimeField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    canceled_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    scheduled_change = ScheduledChangeOut(allow_null=True)
    billed_through = serializers.DateTimeField(allow_null=True)
    next_bill_at = serializers.DateTimeField(allow_null=True)


class SubscriptionChangeOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["upgrade", "downgrade", "cancel"])
    preview = serializers.BooleanField(help_text="true: nothing was written")
    effective_at = serializers.DateTimeField()
    subscription = SubscriptionOut(help_text="as it is (or, for a preview, would be) after the change")
    bill = BillOut(help_text="the bill due when the change takes effect")


# --- coupons


class CouponOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    discount_type = serializers.ChoiceField(choices=DiscountType.choices)
    percent_off = DecimalText(allow_null=True)
    amount_off = DecimalText(allow_null=True)
    currency = serializers.CharField(allow_null=True, help_text="a fixed discount's")
    duration = serializers.ChoiceField(choices=CouponDuration.choices)
    duration_periods = serializers.IntegerField(allow_null=True)
    applies_to = serializers.ChoiceField(choices=CouponTarget.choices)
    meter_codes = serializers.ListField(child=serializers.CharField())
    max_redemptions = serializers.IntegerField(allow_null=True)
    redeem_by = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()
    times_redeemed = serializers.IntegerField()


class RedemptionOut(serializers.Serializer):
    coupon = serializers.CharField(help_text="the coupon's code")
    subscription = serializers.IntegerField(allow_null=True)
    redeemed_at = serializers.DateTimeField()
    covers_from = serializers.DateTimeField()
    covers_until = serializers.DateTimeField(allow_null=True, help_text="null: forever")
    removed_at = serializers.DateTimeField(allow_null=True)


# --- credits


class CreditEntryOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=CreditKind.choices)
    amount = DecimalText(help_text="positive for a grant, negative for a use")
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()
    description = serializers.CharField()
    reference = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True, required=False, help_text="grants only")
    remaining = DecimalText(required=False, help_text="grants only: what is left to use now")
    grant = serializers.IntegerField(required=False, help_text="uses only: the grant used")


class CreditLedgerPage(serializers.Serializer):
    currency = serializers.CharField(help_text="the organization's")
    balance = DecimalText(help_text="usable now, in the organization's currency")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CreditEntryOut(many=True, help_text="the ledger, oldest first")


# --- usage


class UsageGroupOut(serializers.Serializer):
    group = serializers.DictField(child=serializers.CharField(allow_null=True), help_text="dimension -> value")
    value = DecimalText(allow_null=True)


class UsageBucketOut(serializers.Serializer):
    start = serializers.DateTimeField()
    value = DecimalText(allow_null=True)


def _usage_out() -> type[serializers.Serializer]:
    # `from` is a Python keyword: the fields are declared by name.
    fields = {
        "customer": serializers.CharField(),
        "meter": serializers.CharField(),
        "from": serializers.DateTimeField(help_text="inclusive, UTC"),
        "to": serializers.DateTimeField(help_text="exclusive, UTC"),
        "value": DecimalText(allow_null=True, help_text="null where nothing has a value (max, min, latest)"),
        "groups": UsageGroupOut(many=True, help_text="with group_by=true; else empty"),
        "series": UsageBucketOut(many=True, help_text="with window; else empty"),
    }
    return type("UsageOut", (serializers.Serializer,), fields)


def _customer_usage_out() -> type[serializers.Serializer]:
    fields = {
        "customer": serializers.CharField(),
        "from": serializers.DateTimeField(help_text="the current billing period's start, UTC"),
        "to": serializers.DateTimeField(help_text="its end (exclusive), UTC"),
        "meters": serializers.DictField(child=DecimalText(allow_null=True), help_text="meter code -> value"),
    }
    return type("CustomerUsageOut", (serializers.Serializer,), fields)


UsageOut = _usage_out()
CustomerUsageOut = _customer_usage_out()
