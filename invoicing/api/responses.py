"""What invoicing's API answers, as serializers for the OpenAPI schema (/api/schema/); the bodies
are built by invoicing.api.formats, and tests/config/test_api_contract.py checks every answer
against the schema (see billing.api.responses)."""

from __future__ import annotations

from rest_framework import serializers

from billing.api.responses import BillLineOut, DecimalText
from invoicing.models import InvoiceStatus


class TaxOut(serializers.Serializer):
    name = serializers.CharField()
    jurisdiction = serializers.CharField()
    rate = DecimalText(allow_null=True, help_text="percent")
    taxable_amount = DecimalText()
    amount = DecimalText()
    reason = serializers.CharField(help_text="the rule applied, citing its source")


class _LineTaxFields(serializers.Serializer):
    corrects = serializers.IntegerField(allow_null=True, help_text="the stored usage line a correction corrects")
    net_amount = DecimalText()
    tax_amount = DecimalText()
    tax_rate = DecimalText(allow_null=True, help_text="percent, all components")
    tax_jurisdiction = serializers.CharField()
    tax_reason = serializers.CharField()
    taxes = TaxOut(many=True)


class DraftLineOut(BillLineOut, _LineTaxFields):
    """A preview's line: a bill line with its tax, the shape an invoice line has too."""


class InvoiceLineOut(DraftLineOut):
    id = serializers.IntegerField()
    position = serializers.IntegerField()


class DraftOut(serializers.Serializer):
    subscription = serializers.IntegerField()
    bill_point = serializers.DateTimeField()
    currency = serializers.CharField()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    subtotal = DecimalText()
    tax_total = DecimalText()
    total = DecimalText()
    tax_problem = serializers.CharField(help_text="why tax could not be computed; empty if it could")
    lines = DraftLineOut(many=True)


class InvoicePreviewOut(serializers.Serializer):
    customer = serializers.CharField()
    invoices = DraftOut(many=True, help_text="the upcoming invoice of each live subscription")


class InvoiceOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(allow_null=True, help_text="null while a draft")
    status = serializers.ChoiceField(choices=InvoiceStatus.choices)
    customer = serializers.CharField(help_text="the organization's external_id")
    subscription = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField()
    bill_point = serializers.DateTimeField(allow_null=True)
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    subtotal = DecimalText(help_text="net of tax, after discounts")
    tax_total = DecimalText()
    total = DecimalText()
    credits_applied = DecimalText()
    amount_due = DecimalText()
    amount_paid = DecimalText()
    tax_problem = serializers.CharField()
    grace_until = serializers.DateTimeField(allow_null=True)
    issued_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    voided_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    pdf = serializers.CharField(allow_null=True, help_text="the PDF's path; null while a draft")


class SellerSnapshotOut(serializers.Serializer):
    """The seller as invoiced (taken at finalization; empty on a draft)."""

    name = serializers.CharField(required=False)
    address = serializers.CharField(required=False)
    country = serializers.CharField(required=False)
    region = serializers.CharField(required=False)
    tax_id = serializers.CharField(required=False)
    email = serializers.CharField(required=False)
    legal_text = serializers.CharField(required=False)
    primary_color = serializers.CharField(required=False)
    accent_color = serializers.CharField(required=False)
    logo = serializers.CharField(required=False)
    prices_include_tax = serializers.BooleanField(required=False)


class CustomerSnapshotOut(serializers.Serializer):
    """The customer as invoiced (taken at finalization; empty on a draft)."""

    external_id = serializers.CharField(required=False)
    name = serializers.CharField(required=False)
    billing_email = serializers.CharField(required=False)
    address_line1 = serializers.CharField(required=False)
    address_line2 = serializers.CharField(required=False)
    city = serializers.CharField(required=False)
    region = serializers.CharField(required=False)
    postal_code = serializers.CharField(required=False)
    country = serializers.CharField(required=False)
    tax_id = serializers.CharField(required=False)
    tax_exempt = serializers.BooleanField(required=False)
    tax_exemption_reference = serializers.CharField(required=False)


class InvoiceCreditNoteRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    total = DecimalText()


class InvoiceDetailOut(InvoiceOut):
    seller = SellerSnapshotOut()
    customer_details = CustomerSnapshotOut()
    lines = InvoiceLineOut(many=True)
    credit_notes = InvoiceCreditNoteRefOut(many=True)


class CreditNoteLineOut(serializers.Serializer):
    id = serializers.IntegerField()
    line = serializers.IntegerField(help_text="the invoice line credited")
    description = serializers.CharField()
    amount = DecimalText(help_text="net")
    tax_amount = DecimalText()


class CreditNoteOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    invoice = serializers.IntegerField()
    invoice_number = serializers.CharField()
    customer = serializers.CharField()
    reason = serializers.CharField()
    currency = serializers.CharField()
    subtotal = DecimalText()
    tax_total = DecimalText()
    total = DecimalText()
    applied_to_invoice = DecimalText()
    credited_to_balance = DecimalText()
    created_at = serializers.DateTimeField()
    lines = CreditNoteLineOut(many=True)
