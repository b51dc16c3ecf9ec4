"""Bank transfers in the admin: record a transfer, import a statement, and the lines that need a
person (assign to an invoice, or dismiss). Each form calls one service; a DomainError is shown
on the form and nothing is written."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.decimals import decimal_parse
from core.errors import DomainError
from core.money import Money
from invoicing.models import Invoice
from payments.models import BankTransfer, LineOutcome, StatementImport, StatementLine
from payments.services.bank_statement import (
    DATE_FORMATS,
    ColumnMap,
    statement_import,
    statement_line_assign,
    statement_line_dismiss,
)
from payments.services.bank_transfer import bank_transfer_record

MAX_UPLOAD = 5 * 1024 * 1024


class _InvoiceField(forms.CharField):
    """An invoice by its number (what staff have in front of them), or its reference."""

    def clean(self, value):
        value = super().clean(value).strip()
        invoice = (
            Invoice.objects.filter(number=value).first()
            or Invoice.objects.filter(payment_reference=value.replace(" ", "").upper()).first()
        )
        if invoice is None:
            raise forms.ValidationError(f"No invoice numbered {value}.", code="unknown_invoice")
        return invoice


class TransferForm(forms.Form):
    invoice = _InvoiceField(help_text="The invoice number, e.g. INV-000123 (or its RF reference).")
    amount = forms.CharField(help_text="As received, in the invoice's currency, e.g. 35.70.")
    received_on = forms.DateField(help_text="The day the money arrived (YYYY-MM-DD).")
    reference = forms.CharField(required=False, max_length=500, help_text="What the payer wrote.")
    counterparty = forms.CharField(required=False, max_length=300)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_amount(self):
        try:
            return decimal_parse(self.cleaned_data["amount"].strip(), field="The amount", max_fraction_digits=4)
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None


class StatementForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8, with a header row (docs/payments.md has the layout).")
    date_column = forms.CharField(initial="date")
    amount_column = forms.CharField(initial="amount")
    currency_column = forms.CharField(initial="currency", required=False)
    description_column = forms.CharField(initial="description", help_text="Where the payer's reference is.")
    counterparty_column = forms.CharField(initial="counterparty", required=False)
    date_format = forms.ChoiceField(choices=list(DATE_FORMATS.items()), initial="%Y-%m-%d")
    decimal_comma = forms.BooleanField(required=False, help_text='Amounts written "1.234,56".')
    default_currency = forms.CharField(required=False, max_length=3, help_text="When there is no currency column.")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError("The file is larger than 5 MB: split the statement.", code="too_large")
        return upload

    def columns(self) -> ColumnMap:
        data = self.cleaned_data
        return ColumnMap(
            date=data["date_column"],
            amount=data["amount_column"],
            currency=data["currency_column"],
            description=data["description_column"],
            counterparty=data["counterparty_column"],
            date_format=data["date_format"],
            decimal_comma=data["decimal_comma"],
            default_currency=data["default_currency"].upper(),
        )


class AssignForm(forms.Form):
    invoice = _InvoiceField(required=False, help_text="The invoice this money pays.")
    dismiss_reason = forms.CharField(required=False, max_length=300, help_text="Or: why it pays no invoice.")


def _form_page(model_admin, request, *, form, title: str, intro: str = "", submit: str, extra: dict | None = None):
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "intro": intro,
        "form": form,
        "submit": submit,
        **(extra or {}),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "payments/admin/form.html", context)


class _ReadOnly:
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BankTransfer)
class BankTransferAdmin(_ReadOnly, admin.ModelAdmin):
    """The transfers received; "Add" is the record-a-transfer form."""

    list_display = ("payment_link", "invoice", "amount", "received_on", "reference", "statement_line", "recorded_by")
    list_select_related = ("payment__invoice", "recorded_by")
    search_fields = ("reference", "counterparty", "payment__invoice__number")
    date_hierarchy = "received_on"

    @admin.display(description="Payment")
    def payment_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:payments_payment_change", args=[obj.payment_id]), obj.payment_id
        )

    @admin.display(description="Invoice")
    def invoice(self, obj):
        return obj.payment.invoice

    @admin.display(description="Amount")
    def amount(self, obj):
        return obj.payment.money

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TransferForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            invoice = data["invoice"]
            try:
                recorded = bank_transfer_record(
                    actor=request.user,
                    invoice_id=invoice.pk,
                    amount=Money(data["amount"], invoice.currency),
                    received_on=data["received_on"],
                    reference=data["reference"],
                    counterparty=data["counterparty"],
                    note=data["note"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request, f"Transfer recorded on {invoice}: {recorded.outcome.label}.", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:payments_payment_change", args=[recorded.payment.pk]))
        return _form_page(
            self,
            request,
            form=form,
            title="Record a bank transfer",
            intro="Money received for an invoice: less than the amount due is a partial payment; more pays it "
            "and the rest becomes the organization's credit.",
            submit="Record the transfer",
        )


@admin.register(StatementImport)
class StatementImportAdmin(_ReadOnly, admin.ModelAdmin):
    """The statements imported; "Add" uploads one."""

    list_display = ("file_name", "created_at", "imported_by", "lines_read", "lines_new", "lines_matched", "unmatched")
    readonly_fields = [f.name for f in StatementImport._meta.fields]

    @admin.display(description="Unmatched")
    def unmatched(self, obj):
        url = reverse("admin:payments_statementline_changelist")
        return format_html(
            '<a href="{}?statement_import__id__exact={}&outcome__exact=unmatched">{}</a>',
            url,
            obj.pk,
            obj.lines_unmatched,
        )

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StatementForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                record = statement_import(
                    actor=request.user, file_name=upload.name, data=upload.read(), columns=form.columns()
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"{record.lines_read} lines read, {record.lines_new} new: {record.lines_matched} matched, "
                    f"{record.lines_unmatched} unmatched.",
                    messages.SUCCESS,
                )
                url = reverse("admin:payments_statementline_changelist")
                return HttpResponseRedirect(f"{url}?statement_import__id__exact={record.pk}")
        return _form_page(
            self,
            request,
            form=form,
            title="Import a bank statement",
            intro="Lines are matched by the invoice's RF reference in the description and by amount; a line "
            "imported before is skipped.",
            submit="Import",
            extra={"multipart": True},
        )


@admin.register(StatementLine)
class StatementLineAdmin(_ReadOnly, admin.ModelAdmin):
    """Every imported line with its outcome; the unmatched ones are assigned or dismissed here."""

    list_display = (
        "booked_on",
        "amount",
        "currency",
        "description",
        "counterparty",
        "outcome",
        "reason",
        "invoice",
        "act",
    )
    list_filter = ("outcome", "statement_import")
    search_fields = ("description", "counterparty", "invoice__number")
    list_select_related = ("invoice",)
    readonly_fields = [f.name for f in StatementLine._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_assign_permission(self, request) -> bool:
        return request.user.has_perm("payments.change_statementline")

    @admin.display(description="")
    def act(self, obj):
        if obj.outcome != LineOutcome.UNMATCHED:
            return ""
        return format_html('<a href="{}">Assign…</a>', reverse("admin:payments_statementline_assign", args=[obj.pk]))

    def get_urls(self):
        return [
            path(
                "<path:object_id>/assign/",
                self.admin_site.admin_view(self.assign_view),
                name="payments_statementline_assign",
            ),
            *super().get_urls(),
        ]

    def assign_view(self, request, object_id):
        line = StatementLine.objects.filter(pk=unquote(object_id)).first() if unquote(object_id).isdigit() else None
        if line is None:
            raise Http404
        if not self.has_assign_permission(request):
            raise PermissionDenied
        form = AssignForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            invoice, reason = form.cleaned_data["invoice"], form.cleaned_data["dismiss_reason"]
            try:
                if invoice:
                    recorded = statement_line_assign(actor=request.user, line_id=line.pk, invoice_id=invoice.pk)
                    done = f"Line assigned to {invoice}: {recorded.outcome.label}."
                elif reason:
                    statement_line_dismiss(actor=request.user, line_id=line.pk, reason=reason)
                    done = "Line dismissed."
                else:
                    raise DomainError("Give an invoice, or a reason to dismiss the line.", code="invalid_request")
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:payments_statementline_changelist") + "?outcome__exact=unmatched"
                )
        return _form_page(
            self,
            request,
            form=form,
            title=f"Assign the line of {line.booked_on}: {line.money}",
            intro=f"{line.description} — {line.counterparty}. {line.reason}",
            submit="Save",
        )
