"""Invoicing in the Django admin. Invoices and credit notes are read-only here (issued documents
are immutable, convention 12): their state changes only through the services, as the actions
"Finalize now" and "Void" (which first shows a confirmation page: what voiding does, and each
invoice's number and total; it voids only on the confirming POST). The PDF is served by an admin
view (staff only), rendered and stored first if the delivery task has not run yet; a void
invoice's PDF carries a VOID stamp (invoicing.services.pdf_store.invoice_pdf_open). The settings are a
singleton: change only."""

from __future__ import annotations

from copy import copy

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.admin.display import lines_display, money_display, number_display
from core.errors import DomainError
from invoicing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceStatus, InvoicingSettings
from invoicing.pdf_render import _address_lines, _customer_address
from invoicing.remittance import bic_compact, iban_compact, rtn_compact
from invoicing.selectors.settings import tax_provider, tax_settings_from
from invoicing.services.finalize import invoice_finalize
from invoicing.services.invoice import invoice_void
from invoicing.tax import TaxCustomer, TaxError


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class InvoiceLineInline(_ReadOnlyInline):
    model = InvoiceLine
    fields = [
        "position",
        "kind",
        "description",
        "quantity_display",
        "unit_amount_display",
        "amount_display",
        "net_amount_display",
        "tax_amount_display",
        "tax_rate_display",
        "tax_jurisdiction",
        "period_start",
        "period_end",
    ]
    ordering = ["position"]
    quantity_display = number_display("quantity")
    unit_amount_display = money_display("unit_amount", label="unit price", precise=True)
    amount_display = money_display("amount")
    net_amount_display = money_display("net_amount", label="net")
    tax_amount_display = money_display("tax_amount", label="tax")
    tax_rate_display = number_display("tax_rate", suffix=" %")


class CreditNoteInline(_ReadOnlyInline):
    model = CreditNote
    fields = ["number", "reason", "total_display", "applied_display", "credited_display", "created_at"]
    show_change_link = True
    total_display = money_display("total")
    applied_display = money_display("applied_to_invoice", label="applied to the invoice")
    credited_display = money_display("credited_to_balance", label="credited to the balance")


VOIDABLE = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)  # as invoice_void checks


def _pdf_link(invoice: Invoice) -> str:
    if invoice.pk is None or invoice.status == InvoiceStatus.DRAFT:
        return "-"
    return format_html('<a href="{}">{}.pdf</a>', reverse("admin:invoicing_invoice_pdf", args=[invoice.pk]), invoice)


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "organization",
        "status",
        "total_display",
        "amount_due_display",
        "bill_point",
        "issued_at",
        "due_at",
        "pdf_link",
    ]
    list_filter = ["status", "currency", "issued_at"]
    search_fields = ["number", "organization__external_id", "organization__name"]
    list_select_related = ["organization"]
    inlines = [InvoiceLineInline, CreditNoteInline]
    actions = ["finalize_now", "void"]
    fieldsets = [
        (None, {"fields": ["number", "status", "organization", "subscription", "currency", "pdf_link", "void_link"]}),
        ("Period", {"fields": ["bill_point", "period_start", "period_end", "grace_until"]}),
        (
            "Amounts",
            {
                "fields": [
                    "subtotal_display",
                    "tax_total_display",
                    "total_display",
                    "credits_applied_display",
                    "amount_due_display",
                    "amount_paid_display",
                    "tax_problem",
                ]
            },
        ),
        ("Dates", {"fields": ["issued_at", "due_at", "paid_at", "voided_at", "emailed_at", "created_at"]}),
        ("As issued", {"fields": ["seller_address", "customer_address", "pdf_sha256"]}),
    ]
    subtotal_display = money_display("subtotal")
    tax_total_display = money_display("tax_total", label="tax")
    total_display = money_display("total")
    credits_applied_display = money_display("credits_applied")
    amount_due_display = money_display("amount_due")
    amount_paid_display = money_display("amount_paid")

    @admin.display(description="seller, as issued")
    def seller_address(self, obj: Invoice):
        seller = obj.seller or {}
        lines = [seller.get("name"), *_address_lines(seller.get("address")), seller.get("country")]
        if seller.get("tax_id"):
            lines.append(f"Tax ID {seller['tax_id']}")
        return lines_display(str(line) for line in lines if line)

    @admin.display(description="customer, as issued")
    def customer_address(self, obj: Invoice):
        customer = obj.customer or {}
        lines = [customer.get("name"), *_customer_address(customer)]
        if customer.get("tax_id"):
            lines.append(f"Tax ID {customer['tax_id']}")
        return lines_display(str(line) for line in lines if line)

    def get_readonly_fields(self, request, obj=None):
        return [field for _, options in self.fieldsets for field in options["fields"]]

    def has_add_permission(self, request):
        return False  # invoices come from the billing run

    def has_change_permission(self, request, obj=None):
        return False  # nothing on an invoice is edited; state changes are the actions below

    def has_delete_permission(self, request, obj=None):
        return False

    def has_finalize_permission(self, request):
        return request.user.has_perm("invoicing.change_invoice")

    has_void_permission = has_finalize_permission

    @admin.display(description="PDF")
    def pdf_link(self, obj: Invoice):
        return _pdf_link(obj)

    @admin.display(description="Void")
    def void_link(self, obj: Invoice):
        if obj.pk is None or obj.status not in VOIDABLE:
            return "-"
        return format_html(
            '<a href="{}">Void this invoice…</a>', reverse("admin:invoicing_invoice_void", args=[obj.pk])
        )

    def get_urls(self):
        return [
            path("<path:object_id>/pdf/", self.admin_site.admin_view(self.pdf_view), name="invoicing_invoice_pdf"),
            path("<path:object_id>/void/", self.admin_site.admin_view(self.void_view), name="invoicing_invoice_void"),
            *super().get_urls(),
        ]

    def pdf_view(self, request, object_id):
        invoice = Invoice.objects.filter(pk=unquote(object_id)).first() if unquote(object_id).isdigit() else None
        if invoice is None:
            raise Http404
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        if invoice.status == InvoiceStatus.DRAFT:
            self.message_user(request, f"{invoice} is a draft: it has a PDF once finalized.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:invoicing_invoice_change", args=[invoice.pk]))
        from invoicing.services.pdf_store import invoice_pdf_open

        try:
            stored = invoice_pdf_open(invoice=invoice)
        except FileNotFoundError:
            # The PDF is the document as issued: never silently replaced by a new rendering.
            self.message_user(request, f"The stored PDF of {invoice} ({invoice.pdf.name}) is missing.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:invoicing_invoice_change", args=[invoice.pk]))
        return FileResponse(
            stored, as_attachment=True, filename=f"{invoice.number}.pdf", content_type="application/pdf"
        )

    def _each(self, request, queryset, run, done: str) -> None:
        ok = 0
        # A subscription's drafts finalize in order (earlier ones with a later one), so go in order.
        for invoice in queryset.order_by("subscription_id", "bill_point", "id"):
            invoice.refresh_from_db()
            try:
                run(invoice)
                ok += 1
            except DomainError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
        if ok:
            self.message_user(request, f"{ok} invoice(s) {done}.", messages.SUCCESS)

    @admin.action(description="Finalize now", permissions=["finalize"])
    def finalize_now(self, request, queryset):
        self._each(
            request, queryset, lambda invoice: invoice_finalize(actor=request.user, invoice=invoice), "finalized"
        )

    @admin.action(description="Void…", permissions=["void"])
    def void(self, request, queryset):
        """Voids only on the confirming POST of the page it shows first (as "Delete selected")."""
        if request.POST.get("post") == "yes":
            self._each(request, queryset, lambda invoice: invoice_void(actor=request.user, invoice=invoice), "voided")
            return None
        return self._void_confirmation(request, list(queryset.select_related("organization").order_by("id")), bulk=True)

    def void_view(self, request, object_id):
        invoice = self.get_object(request, unquote(object_id)) if unquote(object_id).isdigit() else None
        if invoice is None:
            raise Http404
        if not self.has_void_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            self._each(
                request,
                Invoice.objects.filter(pk=invoice.pk),
                lambda i: invoice_void(actor=request.user, invoice=i),
                "voided",
            )
            return HttpResponseRedirect(reverse("admin:invoicing_invoice_change", args=[invoice.pk]))
        return self._void_confirmation(request, [invoice], bulk=False)

    def _void_confirmation(self, request, invoices: list[Invoice], *, bulk: bool):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Void invoices" if bulk else f"Void {invoices[0]}",
            "invoices": invoices,
            "voidable": VOIDABLE,
            "bulk": bulk,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": reverse("admin:invoicing_invoice_changelist"),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "invoicing/admin/invoice_void.html", context)


class CreditNoteLineInline(_ReadOnlyInline):
    model = CreditNoteLine
    fields = ["line", "amount_display", "tax_amount_display"]
    amount_display = money_display("amount", currency="credit_note.currency", label="net")
    tax_amount_display = money_display("tax_amount", currency="credit_note.currency", label="tax")

    @admin.display(description="Invoice line")
    def line(self, obj: CreditNoteLine) -> str:
        # not the line's __str__, which prints its stored amount
        return f"{obj.invoice_line.position + 1}. {obj.description}"


@admin.register(CreditNote)
class CreditNoteAdmin(admin.ModelAdmin):
    list_display = ["number", "invoice", "organization", "total_display", "created_at"]
    list_filter = ["currency", "created_at"]
    search_fields = ["number", "invoice__number", "invoice__organization__external_id", "reason"]
    list_select_related = ["invoice__organization"]
    inlines = [CreditNoteLineInline]
    fields = [
        "number",
        "invoice",
        "reason",
        "subtotal_display",
        "tax_total_display",
        "total_display",
        "applied_to_invoice_display",
        "credited_to_balance_display",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields
    subtotal_display = money_display("subtotal")
    tax_total_display = money_display("tax_total", label="tax")
    total_display = money_display("total")
    applied_to_invoice_display = money_display("applied_to_invoice", label="applied to the invoice")
    credited_to_balance_display = money_display("credited_to_balance", label="credited to the balance")

    @admin.display(description="Organization", ordering="invoice__organization__external_id")
    def organization(self, obj: CreditNote):
        return obj.invoice.organization

    def has_add_permission(self, request):
        return False  # credit notes go through credit_note_create (the API)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


_SETTINGS_FIELDSETS = [
    ("Seller", {"fields": ["seller_name", "seller_address", "seller_country", "seller_region", "seller_tax_id"]}),
    ("Tax", {"fields": ["tax_registrations", "prices_include_tax", "us_taxability"]}),
    ("Invoices", {"fields": ["grace_hours", "payment_terms_days", "number_prefix", "credit_note_prefix"]}),
    (
        "Bank transfer (printed on invoices with each invoice's payment reference)",
        {
            "fields": [
                "bank_account_holder",
                "bank_name",
                "bank_iban",
                "bank_bic",
                "bank_account_number",
                "bank_routing_number",
            ]
        },
    ),
]


class InvoicingSettingsForm(forms.ModelForm):
    class Meta:
        model = InvoicingSettings
        fields = [field for _, options in _SETTINGS_FIELDSETS for field in options["fields"]]

    def clean_us_taxability(self):
        value = self.cleaned_data["us_taxability"]
        if not isinstance(value, dict):
            raise forms.ValidationError('Use an object of states, e.g. {"TX": false}.', code="invalid")
        return value

    # Stored compact (as validated by python-stdnum); printed grouped.
    def clean_bank_iban(self):
        return iban_compact(self.cleaned_data["bank_iban"])

    def clean_bank_bic(self):
        return bic_compact(self.cleaned_data["bank_bic"])

    def clean_bank_routing_number(self):
        return rtn_compact(self.cleaned_data["bank_routing_number"])

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if bool(data.get("bank_account_number")) != bool(data.get("bank_routing_number")):
            raise forms.ValidationError(
                "A US account needs both its account number and its routing number.", code="bank_incomplete"
            )
        if (data.get("bank_iban") or data.get("bank_account_number")) and not data.get("bank_account_holder"):
            raise forms.ValidationError("Give the account holder's name with the bank account.", code="bank_incomplete")
        # The tax engine's own check of the seller's position (origin, registrations, US
        # overrides): a registration it does not know would hold every invoice as a tax problem.
        candidate = copy(self.instance)
        for name, value in data.items():
            setattr(candidate, name, value)
        settings = tax_settings_from(candidate)
        if settings is not None:
            try:
                customer = TaxCustomer(country=settings.origin_country)
                tax_provider().tax_lines(settings=settings, customer=customer, lines=[], at=timezone.now())
            except TaxError as exc:
                if exc.code in {"invalid_settings", "unsupported_jurisdiction"}:
                    raise forms.ValidationError(exc.message, code=str(exc.code)) from None
        return data


@admin.register(InvoicingSettings)
class InvoicingSettingsAdmin(admin.ModelAdmin):
    form = InvoicingSettingsForm
    fieldsets = _SETTINGS_FIELDSETS

    def has_add_permission(self, request):
        return False  # one row per tenant (pk=1), made on first use

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        settings, _ = InvoicingSettings.objects.get_or_create(pk=1)  # the one row, made on first visit
        return HttpResponseRedirect(reverse("admin:invoicing_invoicingsettings_change", args=[settings.pk]))
