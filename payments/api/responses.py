"""What the payments API answers, as serializers for the OpenAPI schema (/api/schema/); the bodies
are built by payments.api.formats, and tests/config/test_api_contract.py checks every answer
against the schema (see billing.api.responses)."""

from __future__ import annotations

from rest_framework import serializers

from billing.api.responses import DecimalText
from payments.models import CollectionMethod, PaymentAttempt, PaymentStatus

REFUND_STATUSES = ["pending", "succeeded", "failed"]


class PaymentAttemptOut(serializers.Serializer):
    step = serializers.ChoiceField(choices=PaymentAttempt.Step.values)
    outcome = serializers.ChoiceField(choices=PaymentAttempt.Outcome.values)
    status_after = serializers.CharField(help_text="the charge's state the gateway reported; empty if none")
    failure_code = serializers.CharField()
    message = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class RefundOut(serializers.Serializer):
    id = serializers.IntegerField()
    payment = serializers.IntegerField()
    status = serializers.ChoiceField(choices=REFUND_STATUSES)
    currency = serializers.CharField()
    amount = DecimalText()
    credit_note = serializers.IntegerField()
    credit_note_number = serializers.CharField()
    gateway_refund_id = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField()
    created_at = serializers.DateTimeField()


class PaymentOut(serializers.Serializer):
    id = serializers.IntegerField()
    invoice = serializers.IntegerField()
    invoice_number = serializers.CharField(allow_null=True)
    customer = serializers.CharField(help_text="the organization's external_id")
    number = serializers.IntegerField(help_text="the n-th payment of the invoice")
    status = serializers.ChoiceField(choices=PaymentStatus.choices)
    currency = serializers.CharField()
    amount = DecimalText()
    amount_refunded = DecimalText()
    gateway = serializers.CharField()
    gateway_payment_id = serializers.CharField(allow_null=True)
    method_type = serializers.CharField()
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class PaymentDetailOut(PaymentOut):
    attempts = PaymentAttemptOut(many=True)
    refunds = RefundOut(many=True)


class PaymentMethodOut(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    label = serializers.CharField(help_text="brand and last four digits only")
    expires = serializers.CharField(help_text="MM/YYYY for cards, empty otherwise")
    default = serializers.BooleanField()


class PaymentMethodsOut(serializers.Serializer):
    customer = serializers.CharField()
    collection_method = serializers.ChoiceField(choices=CollectionMethod.values)
    gateway = serializers.CharField(allow_null=True)
    methods = PaymentMethodOut(many=True)
