"""PayPal behind the gateway interface: an adapter around payments.paypal's PayPalGateway (Orders
v2 with vaulted payment tokens, Payments v2 refunds, locally verified webhooks).

**Two steps where PayPal has one.** An order created with a vault id is captured in the same call,
so PayPal has no unconfirmed charge to create. `charge_create` makes no call: it returns a
descriptor of the charge to make (`ppreq|<key>|<method>|<amount>|<currency>`), which the ledger
records as the payment's gateway id like a Stripe intent's. `charge_confirm` makes the one call
with the payment's key as `PayPal-Request-Id`; PayPal answers a repeat of it with the first order
and capture and charges nothing (6 hours by default), which is what makes recovery safe:
`charge_get` of a descriptor cannot ask PayPal anything, so it answers "created" and the ledger
confirms again under the same key. Once PayPal answered, the payment's gateway id is the capture
id, which the `PAYMENT.CAPTURE.*` webhooks, `charge_get` and refunds name.

PayPal's own invoice id is the payment's key (unique per payment): with the account set to refuse
duplicate invoice ids, a repeat outside the request-id window is refused rather than charged."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from core.money import Money
from payments.gateways.base import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    Failure,
    FailureCode,
    GatewayDown,
    GatewayError,
    GatewayEvent,
    MethodType,
    PaymentMethodInfo,
    RefundRequest,
    RefundResult,
    SetupSession,
    WebhookRejected,
)
from payments.paypal import PayPalConfig, PayPalError, PayPalGateway
from payments.paypal import WebhookRejected as PayPalWebhookRejected
from payments.paypal import types as pp

DESCRIPTOR = "ppreq"

_FAILURES = {
    pp.FailureCode.HARD_DECLINE: FailureCode.HARD_DECLINE,
    pp.FailureCode.SOFT_DECLINE: FailureCode.SOFT_DECLINE,
    pp.FailureCode.INSUFFICIENT_FUNDS: FailureCode.INSUFFICIENT_FUNDS,
    pp.FailureCode.EXPIRED: FailureCode.EXPIRED_CARD,  # the agreement or its funding expired
    pp.FailureCode.AUTHENTICATION_REQUIRED: FailureCode.AUTHENTICATION_REQUIRED,
    pp.FailureCode.PROCESSING_ERROR: FailureCode.PROCESSING_ERROR,
    pp.FailureCode.GATEWAY_DOWN: FailureCode.GATEWAY_DOWN,
}
_STATUSES = {
    pp.ChargeStatus.SUCCEEDED: ChargeStatus.SUCCEEDED,
    pp.ChargeStatus.PENDING: ChargeStatus.PROCESSING,
    pp.ChargeStatus.FAILED: ChargeStatus.FAILED,
    pp.ChargeStatus.REQUIRES_ACTION: ChargeStatus.REQUIRES_ACTION,
}
_EVENT_STATUSES = {
    pp.EventKind.CHARGE_SUCCEEDED: ChargeStatus.SUCCEEDED,
    pp.EventKind.CHARGE_PENDING: ChargeStatus.PROCESSING,
    pp.EventKind.CHARGE_FAILED: ChargeStatus.FAILED,
}


def _failure(failure: pp.Failure | None) -> Failure | None:
    if failure is None:
        return None
    return Failure(_FAILURES[failure.code], failure.message or failure.gateway_code, failure.gateway_code)


def _vault_error(error: PayPalError) -> GatewayError:
    failure = error.failure
    if failure.code is pp.FailureCode.GATEWAY_DOWN:
        return GatewayDown(f"PayPal unreachable: {failure.gateway_code}")
    if failure.gateway_code == "SETUP_TOKEN_NOT_APPROVED":
        return GatewayError("The payer has not approved PayPal.", code="setup_incomplete")
    if failure.gateway_code in ("RESOURCE_NOT_FOUND", "HTTP_404", "INVALID_RESOURCE_ID"):
        return GatewayError("PayPal does not know this token.", code="setup_incomplete")
    return GatewayError(f"PayPal refused: {failure.gateway_code}", code="gateway_error")


def label_mask(email: str) -> str:
    """The payer's e-mail with its local part masked, "PayPal j•••@example.com": enough for the
    customer to recognise the account, not to reuse the address."""
    local, at, domain = email.partition("@")
    if not at:
        return "PayPal"
    return f"PayPal {local[:1]}•••@{domain}"[:100]


def descriptor_make(request: ChargeRequest) -> str:
    amount = request.amount
    return "|".join(
        [DESCRIPTOR, request.idempotency_key, request.payment_method_id, str(amount.amount), amount.currency]
    )


def descriptor_parse(value: str) -> tuple[str, str, Money] | None:
    parts = value.split("|")
    if len(parts) != 5 or parts[0] != DESCRIPTOR:
        return None
    _, key, method, amount, currency = parts
    return key, method, Money(Decimal(amount), currency)


class PayPalAdapter:
    name = "paypal"

    def __init__(self, config: PayPalConfig, *, certificates=None):
        self.client = PayPalGateway(config, certificates=certificates)

    # -- customers and methods: PayPal's own approval pages save a method ----------------------

    def customer_ensure(self, *, customer_id: str, email: str, name: str, reference: str) -> str:
        # PayPal's vault has no customer call: it assigns the id with the first setup token.
        return self.client.ensure_customer(merchant_customer_id=reference, existing_id=customer_id or None).id or ""

    def setup_start(self, *, customer_id: str, method_types: list[str]) -> SetupSession:
        raise GatewayError(
            "PayPal methods are saved through PayPal's approval page (payments.paypal start_setup).",
            code="not_supported",
        )

    def payment_methods_list(self, *, customer_id: str) -> list[PaymentMethodInfo]:
        return []  # PayPal lists no tokens by customer through this SDK: the payer row holds the wallet

    def payment_method_get(self, *, payment_method_id: str) -> PaymentMethodInfo:
        return PaymentMethodInfo(id=payment_method_id, type=MethodType.PAYPAL, label="PayPal")

    def approval_start(
        self, *, customer_id: str, reference: str, return_url: str, cancel_url: str, idempotency_key: str
    ) -> pp.SetupSession:
        """A vault setup token for a PayPal wallet: the payer approves it on PayPal's page
        (`approve_url`), which sends them back to `return_url` (or `cancel_url`). The session's
        `customer_id` is PayPal's vault customer (made with the first setup token)."""
        customer = self.client.ensure_customer(merchant_customer_id=reference, existing_id=customer_id or None)
        try:
            return self.client.start_setup(
                customer=customer, return_url=return_url, cancel_url=cancel_url, idempotency_key=idempotency_key
            )
        except PayPalError as error:
            raise _vault_error(error) from error

    def approval_finish(self, *, setup_token_id: str, idempotency_key: str) -> tuple[PaymentMethodInfo, str]:
        """The approved setup token as a payment token (the saved wallet) and its vault customer.
        GatewayError `setup_incomplete` when the payer has not approved it."""
        try:
            saved = self.client.finish_setup(setup_token_id=setup_token_id, idempotency_key=idempotency_key)
        except PayPalError as error:
            raise _vault_error(error) from error
        method = PaymentMethodInfo(id=saved.id, type=MethodType.PAYPAL, label=label_mask(saved.label))
        return method, saved.customer_id or ""

    def payment_method_detach(self, *, payment_method_id: str) -> None:
        """Delete the payment token at PayPal: it can no longer be charged."""
        try:
            self.client.remove_method(method_id=payment_method_id)
        except PayPalError as error:
            if error.failure.gateway_code in ("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "HTTP_404"):
                return  # already gone at PayPal: what removing wants
            raise _vault_error(error) from error

    # -- charges -------------------------------------------------------------------------------

    def charge_create(self, request: ChargeRequest) -> ChargeResult:
        if request.amount.amount <= 0:
            raise GatewayError("amount must be positive", code="bad_amount")
        return ChargeResult(
            id=descriptor_make(request),
            status=ChargeStatus.CREATED,
            amount=request.amount,
            payment_method_id=request.payment_method_id,
        )

    def charge_confirm(self, *, charge_id: str, idempotency_key: str) -> ChargeResult:
        described = descriptor_parse(charge_id)
        if described is None:
            return self.charge_get(charge_id=charge_id)  # already a capture: ask, never charge again
        key, method, amount = described
        if key != idempotency_key:
            raise GatewayError("the charge descriptor belongs to another payment", code="bad_request")
        try:
            result = self.client.charge(
                method_id=method,
                amount=amount.amount,
                currency=amount.currency,
                idempotency_key=idempotency_key,
                invoice_id=idempotency_key,
            )
        except ValueError as error:
            raise GatewayError(str(error), code="bad_amount") from error
        return self._result(result, amount=amount, method=method)

    def charge_get(self, *, charge_id: str) -> ChargeResult:
        described = descriptor_parse(charge_id)
        if described is not None:
            # Nothing at PayPal is named by a descriptor: the confirm is repeated with its key.
            _, method, amount = described
            return ChargeResult(id=charge_id, status=ChargeStatus.CREATED, amount=amount, payment_method_id=method)
        return self._result(self.client.fetch_charge(charge_id=charge_id), amount=None, method="")

    def _result(self, result: pp.ChargeResult, *, amount: Money | None, method: str) -> ChargeResult:
        if result.status is pp.ChargeStatus.ERROR:
            raise GatewayDown(f"PayPal unreachable: {result.failure.gateway_code if result.failure else ''}")
        if result.amount is not None and result.currency:
            amount = Money(result.amount, result.currency)
        return ChargeResult(
            id=result.charge_id or "",
            status=_STATUSES[result.status],
            amount=amount or Money(Decimal(0), "USD"),
            payment_method_id=method,
            failure=_failure(result.failure),
            charge_id=result.charge_id or "",
        )

    def refund(self, request: RefundRequest) -> RefundResult:
        try:
            result = self.client.refund(
                charge_id=request.charge_id,
                idempotency_key=request.idempotency_key,
                amount=request.amount.amount,
                currency=request.amount.currency,
            )
        except ValueError as error:
            raise GatewayError(str(error), code="bad_amount") from error
        if result.status is pp.RefundStatus.ERROR:
            raise GatewayDown("PayPal unreachable for a refund")
        if result.status is pp.RefundStatus.FAILED:
            reason = result.failure.gateway_code if result.failure else "refused"
            raise GatewayError(f"PayPal refused the refund: {reason}", code="refund_refused")
        return RefundResult(id=result.refund_id or "", status=str(result.status), amount=request.amount)

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_parse(self, *, body: bytes, headers: dict[str, str], secret: str = "") -> GatewayEvent:
        """Verified against the tenant's webhook id and PayPal's certificate (payments.paypal);
        `secret` is unused (PayPal signs with its key, not a shared secret)."""
        try:
            event = self.client.parse_webhook(body=body, headers=headers)
        except PayPalWebhookRejected as error:
            rejected = WebhookRejected(error.reason)
            rejected.retryable = error.retryable  # type: ignore[attr-defined]
            raise rejected from error
        created = event.occurred_at or datetime.now(UTC)
        amount = Money(event.amount, event.currency) if event.amount is not None and event.currency else None
        charge = refund = None
        if event.kind in _EVENT_STATUSES and event.charge_id:
            charge = ChargeResult(
                id=event.charge_id,
                status=_EVENT_STATUSES[event.kind],
                amount=amount or Money(Decimal(0), "USD"),
                failure=_failure(event.failure),
                charge_id=event.charge_id,
            )
        elif event.kind is pp.EventKind.CHARGE_REFUNDED and event.resource_id:
            state = (event.resource_status or "").upper()
            status = {"COMPLETED": "succeeded", "FAILED": "failed", "CANCELLED": "failed"}.get(state, "pending")
            refund = RefundResult(id=event.resource_id, status=status, amount=amount or Money(Decimal(0), "USD"))
        return GatewayEvent(
            id=event.id,
            type=event.gateway_type,
            created=created,
            payload=event.raw,
            charge=charge,
            refund=refund,
            refund_charge_id=event.charge_id or "" if refund else "",
        )


__all__ = ["PayPalAdapter", "PayPalError"]
