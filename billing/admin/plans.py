"""Plans in the Django admin: a plan editor that writes only through the plan services.

- "Add plan" makes the plan and its version 1 (`plan_create`); "New version" on a plan makes its
  next version (`plan_version_create`), its form pre-filled from the latest version. Versions are
  immutable: the admin shows them read-only and never edits one in place. Name, description and
  `is_active` change in place through `plan_update`.
- Each charge's price is a JSON document (ARCHITECTURE "Pricing semantics") in a textarea, which
  is what the form submits; static/src/price-editor.js turns it into a tier editor and shows a
  worked example computed by the real engine through `price-preview/`, a staff-only JSON endpoint.
  Without JavaScript the textarea still works.
- Service errors (DomainError) are shown on the form, next to the field their path names, and
  nothing is written (the services validate before they write, in one transaction).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal, DecimalException, localcontext
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.forms.fields import InvalidJSONInput
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from billing.admin.display import money_display
from billing.models import BaseFeeTiming, Plan, PlanCharge, PlanInterval, PlanVersion
from billing.pricing import (
    ChargeResult,
    PriceValidationError,
    PricingInputError,
    price_charge,
    price_volume_cliffs,
    validate_price,
)
from billing.services.plan import ChargeInput, VersionInput, plan_create, plan_update, plan_version_create
from core.errors import DomainError
from core.money import UnknownCurrencyError, exact_context, minor_units, round_money
from metering.models import Meter


def _plain(value: Decimal | None) -> str | None:
    """Plain notation without padding: 100.0000000000 -> "100", never "1E+2"."""
    if value is None:
        return None
    return format(value.normalize(), "f") if value else "0"


# --------------------------------------------------------------------------------------------
# The worked example: the engine's exact result for a price, with each breakdown item written
# out for a person ("1,000 TIMES 0.00 + 0.00 flat = 0.00") and each total rounded as an invoice
# line would be (core.money.round_money). Presentation only: the figures are the engine's.

MAX_PREVIEW_EVENTS = 1000
TIMES = "\N{MULTIPLICATION SIGN}"
_QUANTITY_RE = re.compile(r"^-?\d+(\.\d+)?$")
# Where an engine input error points in the request body.
_INPUT_ERROR_PATHS = {
    "invalid_quantity": "quantity",
    "negative_quantity": "quantity",
    "event_values_required": "event_values",
    "event_values_unexpected": "event_values",
    "event_values_mismatch": "event_values",
    "invalid_event_value": "event_values",
    "negative_event_value": "event_values",
}


class PreviewError(DomainError):
    path: str

    def __init__(self, code: str, message: str, path: str = "") -> None:
        super().__init__(message, code=code, path=path)

    def as_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "path": self.path}}


def _shown(value: Decimal, *, places: int = 0) -> str:
    """Grouped digits, at least `places` decimals, every further significant decimal kept
    (a unit price of 0.002 USD stays 0.002; 0 becomes 0.00)."""
    with localcontext(exact_context()):
        value = value.normalize() if value else Decimal(0)
        if -value.as_tuple().exponent < places:
            value = value.quantize(Decimal(1).scaleb(-places))
    return format(value, ",f")


def _usage_number(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PreviewError("not_a_decimal_string", 'must be a decimal string such as "1500".', path)
    if isinstance(value, str) and not _QUANTITY_RE.match(value):
        raise PreviewError("not_a_decimal_string", f'{value!r} is not a decimal string such as "1500".', path)
    return Decimal(value)


def _item_description(item, document: dict[str, Any]) -> str:
    if item.label == "tier":
        tiers = document["tiers"]
        lower = tiers[item.tier - 1]["up_to"] if item.tier else None
        upper = tiers[item.tier]["up_to"]
        name = f"Tier {item.tier + 1}"
        if lower is None:
            return f"{name} (up to {_shown(Decimal(upper))})" if upper is not None else name
        if upper is None:
            return f"{name} (above {_shown(Decimal(lower))})"
        return f"{name} (above {_shown(Decimal(lower))} up to {_shown(Decimal(upper))})"
    if item.label == "packages":
        return f"Packages of {_shown(Decimal(document['package_size']))} (each started one)"
    if item.label == "rate":
        return f"{_shown(Decimal(document['rate']))} % of the charged value"
    return {
        "units": "Units",
        "free_units": "Free units",
        "free_events": "Free events",
        "fixed_fee": "Fixed fee per paid event",
        "per_event_bounds": "Per-event minimum / maximum",
    }.get(item.label, item.label)


def _result_out(result: ChargeResult, quantity: Decimal, document: dict[str, Any], currency: str) -> dict[str, Any]:
    places = minor_units(currency)
    rows = []
    for item in result.breakdown:
        text = (
            f"{_shown(item.quantity)} {TIMES} {_shown(item.unit_amount, places=places)}"
            f" + {_shown(item.flat_amount, places=places)} flat = {_shown(item.amount, places=places)}"
        )
        rows.append(
            {
                "label": item.label,
                "tier": item.tier,
                "description": _item_description(item, document),
                "quantity": _plain(item.quantity),
                "unit_amount": _plain(item.unit_amount),
                "flat_amount": _plain(item.flat_amount),
                "amount": _plain(item.amount),
                "text": text,
            }
        )
    return {
        "quantity": _plain(quantity),
        "amount": _plain(result.amount),
        "rounded_amount": format(round_money(result.amount, currency), "f"),
        "minimum_true_up": _plain(result.minimum_true_up),
        "rounded_minimum_true_up": format(round_money(result.minimum_true_up, currency), "f"),
        "breakdown": rows,
    }


def _sample_quantities(document: dict[str, Any]) -> list[Decimal]:
    """Quantities worth showing for a price: zero, then each place where the price changes and
    one unit past it (tier bounds; the end of the free units and of the first package)."""
    model = document["model"]
    if model in ("graduated", "volume"):
        bounds = [Decimal(t["up_to"]) for t in document["tiers"] if t["up_to"] is not None]
        points = [Decimal(0)] + [q for bound in bounds for q in (bound, bound + 1)]
    elif model == "package":
        free, size = Decimal(document["free_units"]), Decimal(document["package_size"])
        points = [Decimal(0), free, free + 1, free + size, free + size + 1]
    elif model == "per_unit":
        points = [Decimal(0), Decimal(1), Decimal(1000)]
    else:  # percentage: the example is the list of events the seller types
        points = []
    return sorted(set(points))


def price_preview(body: object) -> dict[str, Any]:
    """The worked example for `{"price", "currency", "quantity" | "event_values"}`; PreviewError
    with a code, a message and the path of the offending value in the body otherwise."""
    if not isinstance(body, dict):
        raise PreviewError("invalid_body", "The body must be a JSON object.")
    unknown = sorted(set(body) - {"price", "currency", "quantity", "event_values"})
    if unknown:
        raise PreviewError("unknown_field", f"unknown field {unknown[0]!r}.", unknown[0])
    currency = body.get("currency")
    try:
        minor_units(currency)  # type: ignore[arg-type]
    except (UnknownCurrencyError, TypeError):
        raise PreviewError("invalid_currency", f"{currency!r} is not an ISO 4217 currency code.", "currency") from None
    if "price" not in body:
        raise PreviewError("missing_field", "'price' is required.", "price")
    try:
        document = validate_price(body["price"])
    except PriceValidationError as exc:
        raise PreviewError(exc.code, exc.message, f"price.{exc.path}" if exc.path else "price") from None

    event_values: list[Decimal] | None = None
    if body.get("event_values") is not None:
        raw = body["event_values"]
        if not isinstance(raw, list):
            raise PreviewError("not_a_list", 'must be a list of decimal strings such as ["12.50"].', "event_values")
        if len(raw) > MAX_PREVIEW_EVENTS:
            raise PreviewError("too_many_events", f"at most {MAX_PREVIEW_EVENTS} events in an example.", "event_values")
        event_values = [_usage_number(v, f"event_values[{i}]") for i, v in enumerate(raw)]
    if body.get("quantity") is not None:
        quantity = _usage_number(body["quantity"], "quantity")
    elif event_values is not None:
        try:
            with localcontext(exact_context()):
                quantity = sum(event_values, Decimal(0))
        except DecimalException:
            raise PreviewError("precision_exceeded", "the events' total cannot be computed exactly.", "") from None
    elif document["model"] == "percentage":
        raise PreviewError(
            "event_values_required", "a percentage price needs the value of each event (event_values).", "event_values"
        )
    else:
        raise PreviewError("missing_field", "'quantity' is required.", "quantity")

    try:
        result = price_charge(document, quantity, event_values=event_values)
    except PricingInputError as exc:
        raise PreviewError(exc.code, exc.message, _INPUT_ERROR_PATHS.get(exc.code, "")) from None
    samples = []
    for sample in _sample_quantities(document):
        try:
            samples.append(_result_out(price_charge(document, sample), sample, document, currency))
        except PricingInputError:  # a sample too large to price exactly is simply not shown
            continue
    return {
        "currency": currency,
        "price": document,
        **_result_out(result, quantity, document, currency),
        "volume_cliffs": [_plain(bound) for bound in price_volume_cliffs(document)],
        "samples": samples,
    }


# --------------------------------------------------------------------------------------------
# Forms: shape only. Rules (amounts, prices, meters, groups) are the services'.


class JSONTextField(forms.JSONField):
    """JSON in a textarea, indented for people; empty stays empty (not "null")."""

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        if value is None:
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False)


class PriceField(JSONTextField):
    def validate(self, value):
        super().validate(value)
        if value is not None and not isinstance(value, dict):
            raise forms.ValidationError(
                'A price is a JSON object such as {"model": "per_unit", "unit_amount": "0.01"}.'
            )


class GroupPricesField(JSONTextField):
    def validate(self, value):
        super().validate(value)
        if value is not None and not (isinstance(value, dict) and all(isinstance(p, dict) for p in value.values())):
            raise forms.ValidationError(
                'Group prices are a JSON object of price documents, such as {"eu": {"model": "per_unit", '
                '"unit_amount": "0.00008"}}.'
            )


class PlanCreateForm(forms.Form):
    code = forms.CharField(max_length=100, help_text="Lowercase letters, digits, “.”, “_” and “-”; never changes.")
    name = forms.CharField(max_length=200)
    currency = forms.CharField(max_length=3, help_text="ISO 4217, such as USD or EUR; never changes.")
    interval = forms.ChoiceField(choices=PlanInterval.choices, initial=PlanInterval.MONTH)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].strip().upper()


class VersionForm(forms.Form):
    base_fee = forms.CharField(max_length=40, initial="0", help_text="Per period, a decimal such as 49.00.")
    base_fee_timing = forms.ChoiceField(choices=BaseFeeTiming.choices, initial=BaseFeeTiming.ADVANCE)
    trial_days = forms.IntegerField(min_value=0, max_value=730, initial=0)
    minimum_commitment = forms.CharField(
        max_length=40, required=False, help_text="Least the plan bills per period; blank for none."
    )


class ChargeForm(forms.Form):
    meter = forms.ChoiceField()
    name = forms.CharField(max_length=200, required=False, help_text="Shown on invoices; the meter's name if blank.")
    price = PriceField(
        widget=forms.Textarea(
            attrs={"rows": 10, "class": "vLargeTextField price-json", "spellcheck": "false", "data-price-editor": ""}
        ),
        help_text="The price document (JSON, see the pricing semantics); the tier editor writes it for you.",
    )
    group_property = forms.CharField(
        max_length=255, required=False, help_text="One of the meter's group_by paths, to price each value on its own."
    )
    group_prices = GroupPricesField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text='Prices for some values of the group property, as JSON: {"eu": {…price…}}. Others use the price.',
    )

    def __init__(self, *args, meters: Sequence[Meter] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["meter"].choices = [("", "---------")] + [(m.code, str(m)) for m in meters]


ChargeFormSet = forms.formset_factory(ChargeForm, extra=1, can_delete=True)
CHARGES_PREFIX = "charges"


def _charges_filled(formset) -> list[ChargeForm]:
    """The charge forms that make charges, in order (untouched extra forms and deleted ones out)."""
    return [f for f in formset.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]


def _version_input(version_form: VersionForm, charge_forms: list[ChargeForm]) -> VersionInput:
    data = version_form.cleaned_data
    return VersionInput(
        base_fee=data["base_fee"].strip(),
        base_fee_timing=data["base_fee_timing"],
        trial_days=data["trial_days"],
        minimum_commitment=data["minimum_commitment"].strip() or None,
        charges=[
            ChargeInput(
                meter=f.cleaned_data["meter"],
                price=f.cleaned_data["price"],
                name=f.cleaned_data["name"],
                group_property=f.cleaned_data["group_property"].strip(),
                group_prices=f.cleaned_data["group_prices"] or {},
            )
            for f in charge_forms
        ],
    )


_CHARGE_PATH = re.compile(r"^charges\[(\d+)\]\.([a-z_]+)")
_FIELD_PATH = re.compile(r"^([a-z_]+)")


def _attach_domain_error(message: str, *, forms_: list[forms.Form], charge_forms: list[ChargeForm]) -> None:
    """Show a service error next to the field its path names (`charges[0].price.tiers[1].up_to: …`
    goes to the first charge's price), else nowhere but the page's error note."""
    match = _CHARGE_PATH.match(message)
    if match:
        index, field = int(match[1]), match[2]
        if index < len(charge_forms) and field in charge_forms[index].fields:
            charge_forms[index].add_error(field, message)
        return
    match = _FIELD_PATH.match(message)
    if match:
        for form in forms_:
            if match[1] in form.fields:
                form.add_error(match[1], message)
                return


def _display_order(document: dict[str, Any]) -> dict[str, Any]:
    """A stored price in the document's own key order (jsonb keeps keys in its own order)."""
    try:
        return validate_price(document)
    except PriceValidationError:  # stored prices were validated; show anything else as it is
        return document


def _version_initial(version: PlanVersion | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if version is None:
        return {}, []
    initial = {
        "base_fee": _plain(version.base_fee),
        "base_fee_timing": version.base_fee_timing,
        "trial_days": version.trial_days,
        "minimum_commitment": _plain(version.minimum_commitment) or "",
    }
    charges = [
        {
            "meter": charge.meter.code,
            "name": charge.name,
            "price": _display_order(charge.price),
            "group_property": charge.group_property,
            "group_prices": {k: _display_order(v) for k, v in charge.group_prices.items()} or None,
        }
        for charge in version.charges.select_related("meter")
    ]
    return initial, charges


# --------------------------------------------------------------------------------------------
# Admin classes.


class PlanVersionInline(admin.TabularInline):
    model = PlanVersion
    extra = 0
    fields = ["version", "base_fee_display", "base_fee_timing", "trial_days", "commitment_display", "created_at"]
    readonly_fields = fields  # versions are immutable: a price change is a new version
    show_change_link = True
    base_fee_display = money_display("base_fee", currency="plan.currency", label="base fee", precise=True)
    commitment_display = money_display(
        "minimum_commitment", currency="plan.currency", label="minimum commitment", precise=True
    )
    ordering = ["-version"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "currency", "interval", "is_active", "self_serve"]
    list_filter = ["interval", "currency", "is_active"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "description", "currency", "interval", "is_active", "self_serve", "created_at"]
    # Only these change in place (plan_update); what a plan costs changes with a new version.
    readonly_fields = ["code", "currency", "interval", "created_at"]
    inlines = [PlanVersionInline]
    editor_template = "admin/billing/plan/editor.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("price-preview/", wrap(self.price_preview_view), name=f"{info}_price_preview"),
            path("<path:object_id>/new-version/", wrap(self.new_version_view), name=f"{info}_new_version"),
            *super().get_urls(),
        ]

    def has_delete_permission(self, request, obj=None):
        return False  # subscriptions and invoices refer to its versions; deactivate it instead

    def may_add_version(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.add_planversion")

    def may_edit_prices(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request) or self.may_add_version(request)

    def save_model(self, request, obj, form, change):
        # The add form is the editor below, so only changes in place arrive here.
        plan_update(actor=request.user, plan=obj, **{name: form.cleaned_data[name] for name in form.changed_data})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "may_add_version": self.may_add_version(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    # The editor (add plan, new version) --------------------------------------------------------

    def _render_editor(self, request, *, title: str, plan: Plan | None, plan_form, version_form, formset, error):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "plan": plan,
            "plan_form": plan_form,
            "version_form": version_form,
            "formset": formset,
            "error": error,
            "currency": plan.currency if plan else "",
            "preview_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_price_preview"),
            "has_view_permission": self.has_view_permission(request),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.editor_template, context)

    def add_view(self, request, form_url="", extra_context=None):
        if not (self.has_add_permission(request) and self.may_add_version(request)):
            raise PermissionDenied
        meters = list(Meter.objects.order_by("code"))
        error = None
        if request.method == "POST":
            plan_form = PlanCreateForm(request.POST)
            version_form = VersionForm(request.POST)
            formset = ChargeFormSet(request.POST, prefix=CHARGES_PREFIX, form_kwargs={"meters": meters})
            if all([plan_form.is_valid(), version_form.is_valid(), formset.is_valid()]):
                charge_forms = _charges_filled(formset)
                data = plan_form.cleaned_data
                try:
                    plan = plan_create(
                        actor=request.user,
                        code=data["code"].strip(),
                        name=data["name"],
                        currency=data["currency"],
                        interval=data["interval"],
                        description=data["description"],
                        version=_version_input(version_form, charge_forms),
                    )
                except DomainError as exc:
                    error = exc.message
                    _attach_domain_error(exc.message, forms_=[plan_form, version_form], charge_forms=charge_forms)
                else:
                    self.log_addition(request, plan, [{"added": {}}])
                    messages.success(request, f"Plan {plan.code} created with its version 1.")
                    return HttpResponseRedirect(reverse("admin:billing_plan_change", args=[plan.pk]))
        else:
            plan_form = PlanCreateForm(initial={"currency": getattr(request.tenant, "default_currency", "")})
            version_form = VersionForm()
            formset = ChargeFormSet(prefix=CHARGES_PREFIX, form_kwargs={"meters": meters})
        return self._render_editor(
            request,
            title="Add plan",
            plan=None,
            plan_form=plan_form,
            version_form=version_form,
            formset=formset,
            error=error,
        )

    def new_version_view(self, request, object_id):
        plan = self.get_object(request, unquote(object_id))
        if plan is None:
            raise Http404("No such plan.")
        if not self.may_add_version(request):
            raise PermissionDenied
        meters = list(Meter.objects.order_by("code"))
        latest = plan.versions.order_by("-version").first()
        error = None
        if request.method == "POST":
            version_form = VersionForm(request.POST)
            formset = ChargeFormSet(request.POST, prefix=CHARGES_PREFIX, form_kwargs={"meters": meters})
            if version_form.is_valid() and formset.is_valid():
                charge_forms = _charges_filled(formset)
                try:
                    made = plan_version_create(
                        actor=request.user, plan=plan, version=_version_input(version_form, charge_forms)
                    )
                except DomainError as exc:
                    error = exc.message
                    _attach_domain_error(exc.message, forms_=[version_form], charge_forms=charge_forms)
                else:
                    self.log_change(request, plan, f"Added version {made.version}.")
                    messages.success(
                        request,
                        f"Version {made.version} of {plan.code} created. Subscriptions stay on their version "
                        "until they are moved.",
                    )
                    return HttpResponseRedirect(reverse("admin:billing_plan_change", args=[plan.pk]))
        else:
            initial, charges = _version_initial(latest)
            version_form = VersionForm(initial=initial)
            formset = ChargeFormSet(initial=charges, prefix=CHARGES_PREFIX, form_kwargs={"meters": meters})
        title = f"New version of {plan.code}" + (f" (from version {latest.version})" if latest else "")
        return self._render_editor(
            request,
            title=title,
            plan=plan,
            plan_form=None,
            version_form=version_form,
            formset=formset,
            error=error,
        )

    def price_preview_view(self, request) -> HttpResponse:
        if not self.may_edit_prices(request):
            error = PreviewError("permission_denied", "Your staff role may not edit prices.")
            return JsonResponse(error.as_json(), status=403)
        if request.method != "POST":
            error = PreviewError("method_not_allowed", "POST a JSON body.")
            return JsonResponse(error.as_json(), status=405, headers={"Allow": "POST"})
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return JsonResponse(PreviewError("malformed_json", "The body is not valid JSON.").as_json(), status=400)
        try:
            return JsonResponse(price_preview(body))
        except PreviewError as exc:
            return JsonResponse(exc.as_json(), status=400)


class PlanChargeInline(admin.TabularInline):
    model = PlanCharge
    extra = 0
    fields = ["position", "meter", "name", "price", "group_property", "group_prices"]
    readonly_fields = fields  # versions are immutable: a price change is a new version

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PlanVersion)
class PlanVersionAdmin(admin.ModelAdmin):
    list_display = ["plan", "version", "base_fee_display", "base_fee_timing", "trial_days", "created_at"]
    list_filter = ["plan"]
    fields = [
        "plan",
        "version",
        "base_fee_display",
        "base_fee_timing",
        "trial_days",
        "commitment_display",
        "created_at",
        "charges_summary",
    ]
    readonly_fields = fields
    inlines = [PlanChargeInline]
    base_fee_display = money_display("base_fee", currency="plan.currency", label="base fee", precise=True)
    commitment_display = money_display(
        "minimum_commitment", currency="plan.currency", label="minimum commitment", precise=True
    )

    @admin.display(description="Charges")
    def charges_summary(self, obj: PlanVersion):
        rows = [(c.meter.code, c.price.get("model", "?")) for c in obj.charges.select_related("meter")]
        return format_html_join(", ", "{} ({})", rows) or format_html("{}", "none")

    def has_add_permission(self, request):
        return False  # versions are made by "New version" on the plan

    def has_change_permission(self, request, obj=None):
        return False  # immutable

    def has_delete_permission(self, request, obj=None):
        return False
