"""Coupons and their redemption. What a redemption discounts is computed in billing.bill; here it
is decided which billing periods it covers, once, when it is redeemed:

- once: the billing period it is redeemed in;
- repeating: that period and the following ones, `duration_periods` in all;
- forever: from that period on.

Periods are the subscription's (its plan's interval at the time of redemption). A coupon is
redeemed against an organization's live subscription, at most once per organization."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import Actor, audit_actor
from billing.decimals import decimal_parse
from billing.locks import organization_lock
from billing.models import (
    Coupon,
    CouponDuration,
    CouponRedemption,
    CouponTarget,
    DiscountType,
    Organization,
)
from billing.selectors.organization import subscription_current_get
from billing.selectors.subscription_state import subscription_state_get
from core.errors import DomainError, domain_error_from_validation
from core.money import UnknownCurrencyError, minor_units, round_money
from metering.models import Meter

# A repeating coupon covers at most this many billing periods (ten years of months); a redemption
# walks them one by one, and a longer one is what 'forever' is for.
MAX_DURATION_PERIODS = 120


def coupon_build(
    *,
    code: str,
    name: str,
    discount_type: str,
    duration: str,
    percent_off: Any = None,
    amount_off: Any = None,
    currency: str = "",
    duration_periods: int | None = None,
    applies_to: str = CouponTarget.INVOICE,
    meter_codes: list[str] | None = None,
    max_redemptions: int | None = None,
    redeem_by: datetime | None = None,
) -> Coupon:
    """A validated, unsaved coupon (DomainError with a precise message otherwise)."""
    if discount_type == DiscountType.PERCENTAGE:
        if percent_off is None or amount_off is not None:
            raise DomainError("A percentage coupon needs percent_off and no amount_off.", code="invalid_coupon")
        percent = decimal_parse(percent_off, field="percent_off")
        if not 0 < percent <= 100:
            raise DomainError("percent_off must be more than 0 and at most 100.", code="invalid_coupon")
        amount, currency = None, ""
    elif discount_type == DiscountType.FIXED:
        if amount_off is None or percent_off is not None or not currency:
            raise DomainError(
                "A fixed coupon needs amount_off and currency, and no percent_off.", code="invalid_coupon"
            )
        amount = decimal_parse(amount_off, field="amount_off")
        if amount <= 0:
            raise DomainError("amount_off must be positive.", code="invalid_coupon")
        try:
            places = minor_units(currency)
        except UnknownCurrencyError:
            raise DomainError(
                f"currency: {currency!r} is not an ISO 4217 currency code.", code="invalid_coupon"
            ) from None
        # A discount the invoice could not show (JPY 0.5) would be rounded away on every line.
        if amount != round_money(amount, currency):
            raise DomainError(
                f"amount_off must have at most {places} decimals in {currency}, its minor unit.",
                code="invalid_coupon",
            )
        percent = None
    else:
        raise DomainError(f"discount_type must be one of {DiscountType.values}.", code="invalid_coupon")
    if duration not in CouponDuration.values:
        raise DomainError(f"duration must be one of {CouponDuration.values}.", code="invalid_coupon")
    if (duration == CouponDuration.REPEATING) != (duration_periods is not None):
        raise DomainError("duration_periods is required for, and only for, repeating coupons.", code="invalid_coupon")
    if duration_periods is not None and not 1 <= duration_periods <= MAX_DURATION_PERIODS:
        raise DomainError(
            f"duration_periods must be from 1 to {MAX_DURATION_PERIODS} (longer: use duration 'forever').",
            code="invalid_coupon",
        )
    if applies_to not in CouponTarget.values:
        raise DomainError(f"applies_to must be one of {CouponTarget.values}.", code="invalid_coupon")
    meter_codes = list(meter_codes or [])
    if meter_codes and applies_to != CouponTarget.CHARGES:
        raise DomainError("meter_codes only go with applies_to 'charges'.", code="invalid_coupon")
    unknown = set(meter_codes) - set(Meter.objects.filter(code__in=meter_codes).values_list("code", flat=True))
    if unknown:
        raise DomainError(f"No meter with code {sorted(unknown)[0]!r}.", code="unknown_meter")
    coupon = Coupon(
        code=code,
        name=name,
        discount_type=discount_type,
        percent_off=percent,
        amount_off=amount,
        currency=currency,
        duration=duration,
        duration_periods=duration_periods,
        applies_to=applies_to,
        meter_codes=meter_codes,
        max_redemptions=max_redemptions,
        redeem_by=redeem_by,
    )
    try:
        coupon.full_clean()
    except ValidationError as exc:
        raise domain_error_from_validation(exc, code="invalid_coupon", unique_code="coupon_exists") from None
    return coupon


def coupon_create(*, actor: Actor, **fields: Any) -> Coupon:
    """A new coupon (see `coupon_build` for the fields and their rules)."""
    coupon = coupon_build(**fields)
    with audit_actor(actor), transaction.atomic():
        coupon.save()
    return coupon


def coupon_update(*, actor: Actor, coupon: Coupon, **changes: Any) -> Coupon:
    """Name, whether it can still be redeemed, and its limits; what it gives never changes
    (redemptions already made rely on it)."""
    allowed = {"name", "is_active", "max_redemptions", "redeem_by"}
    if set(changes) - allowed:
        raise DomainError(f"Only {sorted(allowed)} can change on a coupon.", code="not_editable")
    with audit_actor(actor), transaction.atomic():
        locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
        for key, value in changes.items():
            setattr(locked, key, value)
        try:
            locked.full_clean()
        except ValidationError as exc:
            raise domain_error_from_validation(exc, code="invalid_coupon") from None
        locked.save()
    return locked


def coupon_redeem(
    *, actor: Actor, coupon: Coupon, organization: Organization, at: datetime | None = None
) -> CouponRedemption:
    at = (at or timezone.now()).replace(microsecond=0)
    with audit_actor(actor), transaction.atomic():
        organization_lock(organization.pk)
        locked = Coupon.objects.select_for_update().get(pk=coupon.pk)  # redemptions are counted one at a time
        if not locked.is_active:
            raise DomainError(f"Coupon {locked.code!r} is no longer active.", code="coupon_inactive")
        if locked.redeem_by is not None and at >= locked.redeem_by:
            raise DomainError(
                f"Coupon {locked.code!r} expired on {locked.redeem_by.isoformat()}.", code="coupon_expired"
            )
        if locked.max_redemptions is not None and locked.redemptions.count() >= locked.max_redemptions:
            raise DomainError(
                f"Coupon {locked.code!r} has been redeemed the most times it may be.", code="coupon_used_up"
            )
        subscription = subscription_current_get(organization=organization)
        if subscription is None:
            raise DomainError(
                f"Organization {organization.external_id!r} has no live subscription to discount.",
                code="no_subscription",
            )
        if locked.discount_type == DiscountType.FIXED and locked.currency != subscription.plan_version.plan.currency:
            raise DomainError(
                f"Coupon {locked.code!r} is in {locked.currency}; the subscription bills in "
                f"{subscription.plan_version.plan.currency}.",
                code="currency_mismatch",
            )
        state = subscription_state_get(subscription)
        covers_from, end = state.period(max(at, state.started_at))
        if locked.duration == CouponDuration.FOREVER:
            covers_until = None
        else:
            for _ in range((locked.duration_periods or 1) - 1):
                end = state.period(end)[1]
            covers_until = end
        try:
            with transaction.atomic():
                return CouponRedemption.objects.create(
                    coupon=locked,
                    organization=organization,
                    subscription=subscription,
                    redeemed_at=at,
                    covers_from=covers_from,
                    covers_until=covers_until,
                    redeemed_by=actor,
                )
        except IntegrityError:
            raise DomainError(
                f"Organization {organization.external_id!r} has already redeemed coupon {locked.code!r}.",
                code="already_redeemed",
            ) from None


def coupon_redemption_remove(
    *, actor: Actor, redemption: CouponRedemption, at: datetime | None = None
) -> CouponRedemption:
    """Stop a redemption: lines billed from now on are not discounted by it."""
    at = (at or timezone.now()).replace(microsecond=0)
    with audit_actor(actor), transaction.atomic():
        organization_lock(redemption.organization_id)
        locked = CouponRedemption.objects.select_for_update().get(pk=redemption.pk)
        if locked.removed_at is None:
            locked.removed_at = at
            locked.save(update_fields=["removed_at"])
    return locked
