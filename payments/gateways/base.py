"""The one narrow interface every payment gateway implements (Stripe now; PayPal and bank
transfers next), with typed requests and answers. Amounts cross it as Money; integer minor units
exist only inside an adapter, from the gateway's own currency rules.

Failures come back normalized (`FailureCode`), so collection, dunning and the API never look at a
gateway's own codes. A gateway that cannot be reached (or answers 5xx / 429) raises `GatewayDown`:
the call may or may not have reached it, so the caller records the attempt as errored and retries
later with the same idempotency key."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from core.money import Money


class FailureCode(StrEnum):
    HARD_DECLINE = "hard_decline"  # do not retry this method (stolen, closed account, fraud...)
    SOFT_DECLINE = "soft_decline"  # the issuer may accept later: dunning retries
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    AUTHENTICATION_REQUIRED = "authentication_required"  # the customer must act (3-D Secure)
    PROCESSING_ERROR = "processing_error"
    GATEWAY_DOWN = "gateway_down"


class ChargeStatus(StrEnum):
    """A charge's state at the gateway, normalized."""

    CREATED = "created"  # exists, not confirmed yet (our first step of two)
    PROCESSING = "processing"  # debits (SEPA, ACH): settles or fails later, by webhook
    REQUIRES_ACTION = "requires_action"  # 3-D Secure: the customer finishes it on the portal
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_CHARGE_STATUSES = frozenset({ChargeStatus.SUCCEEDED, ChargeStatus.FAILED, ChargeStatus.CANCELED})


class MethodType(StrEnum):
    CARD = "card"
    SEPA_DEBIT = "sepa_debit"
    US_BANK_ACCOUNT = "us_bank_account"  # ACH debit
    PAYPAL = "paypal"  # a vaulted PayPal wallet (payments.gateways.paypal)


class GatewayError(Exception):
    """The gateway refused the request itself (bad parameters, unknown object, bad key): retrying
    the same request cannot help."""

    def __init__(self, message: str, *, code: str = "gateway_error"):
        super().__init__(message)
        self.code = code


class GatewayDown(GatewayError):
    """Unreachable, timed out, 5xx or rate limited: the outcome is unknown."""

    def __init__(self, message: str):
        super().__init__(message, code=FailureCode.GATEWAY_DOWN)


class WebhookRejected(Exception):
    """A webhook whose signature, timestamp or body does not verify: nothing may be written."""


@dataclass(frozen=True)
class Failure:
    code: FailureCode
    message: str
    gateway_code: str = ""  # the gateway's own code, kept for people (never branched on)


@dataclass(frozen=True)
class PaymentMethodInfo:
    id: str
    type: MethodType | str
    label: str  # "visa •••• 4242", "SEPA •••• 3000": never more than the last four
    expires: str = ""  # "MM/YYYY" for cards


@dataclass(frozen=True)
class SetupSession:
    """What the browser needs to let the gateway's own UI collect a method (Stripe Elements:
    the SetupIntent's client secret and the publishable key). No card data passes through us."""

    id: str
    client_secret: str
    publishable_key: str


@dataclass(frozen=True)
class ChargeRequest:
    amount: Money
    customer_id: str
    payment_method_id: str
    method_type: MethodType | str
    idempotency_key: str  # from the ledger row: the same key for every retry of one charge
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChargeResult:
    id: str  # the gateway's id (a PaymentIntent)
    status: ChargeStatus
    amount: Money
    payment_method_id: str = ""
    failure: Failure | None = None
    charge_id: str = ""  # the underlying charge, where the gateway has one (refunds need it)
    # What the gateway's own browser UI needs to finish a charge that requires action (Stripe.js
    # confirmCardPayment): scoped to this one charge, never a key.
    client_secret: str = ""


@dataclass(frozen=True)
class RefundRequest:
    charge_id: str  # the id ChargeResult.id gave
    amount: Money
    idempotency_key: str
    reason: str = ""


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # pending | succeeded | failed
    amount: Money


@dataclass(frozen=True)
class GatewayEvent:
    """A verified inbound webhook, normalized. `charge` is set for events about a charge's state;
    `created` orders events about the same object (an older one never overrides a newer state)."""

    id: str
    type: str  # the gateway's own type, logged
    created: datetime
    payload: dict
    charge: ChargeResult | None = None
    refund: RefundResult | None = None
    refund_charge_id: str = ""
    method: PaymentMethodInfo | None = None  # a saved method's details, as the gateway now has them


class Gateway(Protocol):
    name: str

    def customer_ensure(self, *, customer_id: str, email: str, name: str, reference: str) -> str:
        """The gateway's customer id: `customer_id` if it still exists there, else a new one."""

    def setup_start(self, *, customer_id: str, method_types: list[str]) -> SetupSession:
        """Begin saving a method through the gateway's own UI (off-session use allowed)."""

    def setup_method_get(self, *, setup_id: str, customer_id: str) -> PaymentMethodInfo:
        """The method a finished setup saved, made sure to be the customer's. The browser only
        reports the setup's id: the gateway says whether it succeeded and for whom (GatewayError
        `setup_incomplete` otherwise)."""

    def payment_methods_list(self, *, customer_id: str) -> list[PaymentMethodInfo]: ...

    def payment_method_get(self, *, payment_method_id: str) -> PaymentMethodInfo: ...

    def payment_method_detach(self, *, payment_method_id: str) -> None:
        """Remove a saved method from its customer at the gateway (it can no longer be charged)."""

    def charge_create(self, request: ChargeRequest) -> ChargeResult:
        """Step one of a charge: the gateway object, not yet confirmed (moves no money). The same
        idempotency key answers with the same object, so a crash before its id is recorded costs
        nothing."""

    def charge_confirm(self, *, charge_id: str, idempotency_key: str) -> ChargeResult:
        """Step two: confirm off-session. A decline is a result with `failure`, not an exception."""

    def charge_get(self, *, charge_id: str) -> ChargeResult:
        """The charge's state now (recovery after a crash between a request and its record)."""

    def refund(self, request: RefundRequest) -> RefundResult: ...

    def webhook_parse(self, *, body: bytes, headers: dict[str, str], secret: str, now: datetime) -> GatewayEvent:
        """Verify (raises WebhookRejected) and normalize one inbound webhook."""
