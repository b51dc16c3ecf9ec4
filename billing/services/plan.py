"""Plans and their versions. What a plan costs lives in its versions: a pricing change makes a new
version (under a lock on the plan, numbered densely), and subscriptions keep the version they are
on until moved explicitly. Names and descriptions change in place."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from accounts.audit import Actor, audit_actor
from billing.decimals import decimal_parse
from billing.models import Plan, PlanCharge, PlanVersion
from billing.pricing import PriceValidationError, validate_price
from core.errors import DomainError, domain_error_from_validation
from metering.models import Meter

# Aggregations whose per-group values combine into a coarser group (sum, or max/min of maxima/minima).
_COMBINABLE = frozenset({"count", "sum", "max", "min"})


@dataclass(frozen=True)
class ChargeInput:
    meter: str  # the meter's code
    price: dict[str, Any]
    name: str = ""
    group_property: str = ""
    group_prices: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionInput:
    base_fee: str = "0"
    base_fee_timing: str = "advance"
    trial_days: int = 0
    minimum_commitment: str | None = None
    charges: list[ChargeInput] = field(default_factory=list)


def _amount(value: Any, *, field_name: str) -> Decimal:
    amount = decimal_parse(value, field=field_name)
    if amount < 0:
        raise DomainError(f"{field_name} must be a non-negative decimal.", code="invalid_amount")
    return amount


def _price(document: Any, *, where: str) -> dict[str, Any]:
    try:
        return validate_price(document)
    except PriceValidationError as exc:
        path = f"{where}.{exc.path}" if exc.path else where
        raise DomainError(f"{path}: {exc.message}", code=f"invalid_price.{exc.code}", path=path) from None


def _charges(charges: list[ChargeInput]) -> list[PlanCharge]:
    meters = {m.code: m for m in Meter.objects.filter(code__in=[c.meter for c in charges])}
    out: list[PlanCharge] = []
    seen: set[str] = set()
    for index, charge in enumerate(charges):
        where = f"charges[{index}]"
        meter = meters.get(charge.meter)
        if meter is None:
            raise DomainError(f"{where}.meter: no meter with code {charge.meter!r}.", code="unknown_meter")
        if charge.meter in seen:
            raise DomainError(f"{where}.meter: {charge.meter!r} is charged twice.", code="duplicate_charge")
        seen.add(charge.meter)
        if charge.group_property and charge.group_property not in meter.group_by:
            raise DomainError(
                f"{where}.group_property must be one of the meter's group_by {meter.group_by}.", code="invalid_group"
            )
        if charge.group_prices and not charge.group_property:
            raise DomainError(f"{where}.group_prices needs a group_property.", code="invalid_group")
        if charge.group_property and len(meter.group_by) > 1 and meter.aggregation not in _COMBINABLE:
            # Grouping by one of several dimensions combines the meter's groups; a distinct count,
            # a latest value or a time-weighted sum of several groups is not the sum of the parts.
            raise DomainError(
                f"{where}.group_property: a {meter.aggregation} meter can be priced per group only when "
                "the group is its only group_by dimension.",
                code="invalid_group",
            )
        documents = [charge.price, *charge.group_prices.values()]
        percentage = any(isinstance(d, dict) and d.get("model") == "percentage" for d in documents)
        if percentage and meter.aggregation != "sum":
            raise DomainError(
                f"{where}.price: a percentage price takes a share of each event's amount, so its meter must "
                f"sum a property (meter {meter.code!r} is {meter.aggregation}).",
                code="invalid_charge",
            )
        group_prices = {
            str(value): _price(document, where=f"{where}.group_prices.{value}")
            for value, document in charge.group_prices.items()
        }
        out.append(
            PlanCharge(
                meter=meter,
                name=charge.name,
                price=_price(charge.price, where=f"{where}.price"),
                group_property=charge.group_property,
                group_prices=group_prices,
                position=index,
            )
        )
    return out


def plan_version_create(*, actor: Actor, plan: Plan, version: VersionInput) -> PlanVersion:
    """Make the plan's next version with its charges; validated first, written in one transaction."""
    base_fee = _amount(version.base_fee, field_name="base_fee")
    minimum = (
        None
        if version.minimum_commitment is None
        else _amount(version.minimum_commitment, field_name="minimum_commitment")
    )
    charges = _charges(version.charges)
    with audit_actor(actor), transaction.atomic():
        Plan.objects.select_for_update().get(pk=plan.pk)  # versions are numbered one at a time
        number = (plan.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        made = PlanVersion(
            plan=plan,
            version=number,
            base_fee=base_fee,
            base_fee_timing=version.base_fee_timing,
            trial_days=version.trial_days,
            minimum_commitment=minimum,
        )
        try:
            made.full_clean()
        except ValidationError as exc:
            raise domain_error_from_validation(exc, code="invalid_plan") from None
        made.save()
        for charge in charges:
            charge.plan_version = made
        PlanCharge.objects.bulk_create(charges)
    return made


def plan_create(
    *, actor: Actor, code: str, name: str, currency: str, interval: str, description: str = "", version: VersionInput
) -> Plan:
    plan = Plan(code=code, name=name, currency=currency, interval=interval, description=description)
    try:
        plan.full_clean()
    except ValidationError as exc:
        raise domain_error_from_validation(exc, code="invalid_plan", unique_code="plan_exists") from None
    with audit_actor(actor), transaction.atomic():
        plan.save()
        plan_version_create(actor=actor, plan=plan, version=version)
    return plan


def plan_update(*, actor: Actor, plan: Plan, **changes: Any) -> Plan:
    """Name, description, whether new subscriptions may use it and whether customers may switch to
    it themselves in the portal (`self_serve`); prices change by a new version."""
    allowed = {"name", "description", "is_active", "self_serve"}
    if set(changes) - allowed:
        raise DomainError(
            f"Only {sorted(allowed)} change in place; prices change with a new version.", code="not_editable"
        )
    with audit_actor(actor), transaction.atomic():
        locked = Plan.objects.select_for_update().get(pk=plan.pk)
        for key, value in changes.items():
            setattr(locked, key, value)
        locked.full_clean()
        locked.save()
    return locked
