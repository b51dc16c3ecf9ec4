from __future__ import annotations

from django.db import models

from core.money import money_column
from invoicing.models.invoice import AMOUNT


class CollectionMethod(models.TextChoices):
    AUTOMATIC = "automatic", "Charge the default payment method when an invoice is finalized"
    MANUAL = "manual", "Send the invoice; the customer pays from the portal or by transfer"


class PaymentCustomer(models.Model):
    """An organization as a payer: how it is collected from, and who it is at the gateway. No
    row means automatic collection with no method yet (nothing to charge)."""

    organization = models.OneToOneField("billing.Organization", on_delete=models.CASCADE, related_name="payer")
    collection_method = models.CharField(
        max_length=10, choices=CollectionMethod.choices, default=CollectionMethod.AUTOMATIC
    )
    gateway = models.CharField(max_length=20, default="stripe")
    gateway_customer_id = models.CharField(max_length=255, blank=True)
    default_payment_method_id = models.CharField(max_length=255, blank=True)
    default_method_type = models.CharField(max_length=30, blank=True)
    default_method_label = models.CharField(max_length=100, blank=True)  # "visa •••• 4242": never more
    # The default card's expiry (its brand and last four are the label), kept when it is made the
    # default: the gateway is asked only when methods are listed, and dunning's card-expiry
    # warnings (30 and 7 days ahead) need it for every payer at once. None for other methods.
    default_card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    default_card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # A PayPal wallet beside the methods of `gateway` (Stripe): PayPal's vault customer and the one
    # payment token its approval page saved. Ids only, like Stripe's `pm_...`: charging a token takes
    # the tenant's client secret (encrypted in GatewaySettings). The label is the payer's e-mail,
    # masked. `paypal_setup_token_id` is the latest approval: the only setup token the portal's
    # return may turn into this organization's wallet (another organization's is refused). Once it
    # is saved, `paypal_setup_finished` is set and the token kept, so a reloaded return page answers
    # "saved" instead of "not added"; removing the wallet or starting another approval forgets it.
    paypal_customer_id = models.CharField(max_length=64, blank=True)
    paypal_token_id = models.CharField(max_length=64, blank=True)
    paypal_label = models.CharField(max_length=100, blank=True)
    paypal_setup_token_id = models.CharField(max_length=64, blank=True)
    paypal_setup_finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Payer {self.organization_id}"

    def method_gateway(self, method_type: str) -> str:
        """The gateway that holds a method of this type: PayPal's wallet, else `gateway`'s."""
        return "paypal" if method_type == "paypal" else self.gateway

    def customer_at(self, gateway: str) -> str:
        return self.paypal_customer_id if gateway == "paypal" else self.gateway_customer_id

    @property
    def default_gateway(self) -> str:
        return self.method_gateway(self.default_method_type)

    @property
    def chargeable(self) -> bool:
        """A default method and its gateway's customer: something collection can charge."""
        return bool(self.default_payment_method_id and self.customer_at(self.default_gateway))


class PaymentStatus(models.TextChoices):
    PENDING = "pending"  # the ledger row exists; the gateway has not answered (or was down)
    PROCESSING = "processing"  # debit in flight: its webhook settles or fails it
    REQUIRES_ACTION = "requires_action"  # 3-D Secure: the customer must finish it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class Payment(models.Model):
    """One charge at a gateway for an invoice: the `number`-th try to collect it. Its idempotency
    key is derived from (invoice, number), so every retry of this charge (after a crash, a timeout,
    the gateway down) is the same charge at the gateway. A new number is a new charge, made only
    after this one failed for good."""

    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="payments")
    organization = models.ForeignKey("billing.Organization", on_delete=models.PROTECT, related_name="payments")
    number = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=100, unique=True)
    gateway = models.CharField(max_length=20)
    gateway_payment_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    gateway_charge_id = models.CharField(max_length=255, blank=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    method_type = models.CharField(max_length=30, blank=True)
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    amount_refunded = models.DecimalField(**AMOUNT, default=0)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    failure_code = models.CharField(max_length=30, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # The gateway time of the newest state recorded: an older webhook never overrides it.
    gateway_state_at = models.DateTimeField(null=True, blank=True)
    # Set once, by the conditional update that applies the money to the invoice.
    applied_at = models.DateTimeField(null=True, blank=True)
    # This payment is the one that made the invoice paid (at most one per invoice).
    settled_invoice = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "number"], name="payments_payment_attempt_number"),
            models.UniqueConstraint(
                fields=["invoice"], condition=models.Q(settled_invoice=True), name="payments_invoice_settled_once"
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payments_payment_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(amount_refunded__gte=0, amount_refunded__lte=models.F("amount")),
                name="payments_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=models.Q(applied_at__isnull=True) | models.Q(status="succeeded"),
                name="payments_applied_only_succeeded",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="payments_status_recent")]

    def __str__(self) -> str:
        return f"Payment {self.pk} ({self.status})"

    money = money_column("amount")

    refunded = money_column("amount_refunded")


class PaymentAttempt(models.Model):
    """Each call to the gateway for a payment, appended, never edited: what was asked, and the
    outcome (or `errored` when the gateway could not be reached: the same payment is retried)."""

    class Step(models.TextChoices):
        CREATE = "create"
        CONFIRM = "confirm"
        RECOVER = "recover"  # after a crash: asked the gateway what happened

    class Outcome(models.TextChoices):
        STARTED = "started"  # written before the call: one left so means the process died in it
        DONE = "done"
        DECLINED = "declined"
        ERRORED = "errored"

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="attempts")
    step = models.CharField(max_length=10, choices=Step.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.STARTED)
    status_after = models.CharField(max_length=20, blank=True)
    failure_code = models.CharField(max_length=30, blank=True)
    message = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["payment_id", "started_at", "id"]

    def __str__(self) -> str:
        return f"{self.step} {self.outcome}"


class Refund(models.Model):
    """Money given back on a payment, always with the credit note that says why (the invoice's
    correction); the gateway call happens after the note is committed."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    credit_note = models.OneToOneField("invoicing.CreditNote", on_delete=models.PROTECT, related_name="refund")
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=100, unique=True)
    gateway_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    status = models.CharField(max_length=20, default="pending")  # pending | succeeded | failed
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="payments_refund_positive")]

    def __str__(self) -> str:
        return f"Refund {self.pk}"

    money = money_column("amount")
