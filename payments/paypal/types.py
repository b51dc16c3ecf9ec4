"""What the PayPal adapter takes and returns: small frozen dataclasses, no SDK objects.

The shapes mirror the gateway interface of `payments/gateways/` (ensure a customer, start saving a
method in the gateway's own UI, charge off session under an idempotency key, fetch a charge,
refund, verify and parse a webhook) so the adapter can be wired behind it without translation of
meaning, only of names. Amounts are Decimal in the currency's major unit with an ISO code beside
them, as PayPal itself speaks; the caller wraps them in its Money type.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


class FailureCode(enum.StrEnum):
    """Normalized reasons a charge or refund did not succeed, shared by every gateway.

    `soft_decline` and `insufficient_funds` may succeed on a later retry of the same method;
    `hard_decline` and `expired` need a new method; `authentication_required` needs the payer
    present; `processing_error` is a request PayPal refused for a reason retrying will not fix
    (bad credentials, invalid amount); `gateway_down` means the outcome is unknown or PayPal did
    not process the request: retry later with the same idempotency key.
    """

    HARD_DECLINE = "hard_decline"
    SOFT_DECLINE = "soft_decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED = "expired"
    AUTHENTICATION_REQUIRED = "authentication_required"
    PROCESSING_ERROR = "processing_error"
    GATEWAY_DOWN = "gateway_down"


@dataclass(frozen=True, slots=True)
class Failure:
    code: FailureCode
    # PayPal's own reason (an `issue` such as INSTRUMENT_DECLINED, a processor response code such
    # as 5120, or the HTTP status), kept for people and logs; never used for decisions downstream.
    gateway_code: str
    message: str = ""


class ChargeStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    # Accepted by PayPal but not settled (a capture PENDING review or e-check); a webhook
    # (PAYMENT.CAPTURE.COMPLETED or .DENIED) settles it.
    PENDING = "pending"
    FAILED = "failed"
    # The payer must act (approve, authenticate) before the money can move.
    REQUIRES_ACTION = "requires_action"
    # Outcome unknown or not processed (PayPal down, connection lost): ask again with the same key.
    ERROR = "error"


class RefundStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """PayPal's vault has no call that creates a customer: PayPal assigns the customer id with
    the first setup token. Until then `id` is None and `merchant_customer_id` (ours) is sent."""

    id: str | None
    merchant_customer_id: str


@dataclass(frozen=True, slots=True)
class SetupSession:
    """A vault setup token waiting for the payer: send the browser to `approve_url`; PayPal
    returns it to the return URL, after which `finish_setup` turns the token into a method."""

    setup_token_id: str
    approve_url: str
    customer_id: str | None
    status: str


@dataclass(frozen=True, slots=True)
class SavedMethod:
    """A vaulted PayPal payment token, chargeable off session."""

    id: str
    customer_id: str | None
    kind: str  # "paypal"
    # What to show the customer ("j***@example.com" style masking is the caller's choice).
    label: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: ChargeStatus
    # The capture id: what refunds, webhooks (resource id of PAYMENT.CAPTURE.*) and
    # fetch_charge name. None when PayPal refused before capturing.
    charge_id: str | None
    order_id: str | None
    amount: Decimal | None
    currency: str | None
    failure: Failure | None = None
    approve_url: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    status: RefundStatus
    refund_id: str | None
    charge_id: str
    amount: Decimal | None
    currency: str | None
    failure: Failure | None = None


class EventKind(enum.StrEnum):
    """PayPal event types narrowed to what the payment ledger acts on; anything else is OTHER
    (to be logged and ignored)."""

    CHARGE_SUCCEEDED = "charge.succeeded"
    CHARGE_PENDING = "charge.pending"
    CHARGE_FAILED = "charge.failed"
    CHARGE_REFUNDED = "charge.refunded"
    METHOD_SAVED = "payment_method.saved"
    METHOD_REMOVED = "payment_method.removed"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified PayPal webhook, normalized. `id` is PayPal's event id (WH-…): the key to store
    it once. `occurred_at` is the event's create_time, for ordering against the stored state."""

    id: str
    gateway_type: str
    kind: EventKind
    occurred_at: datetime | None
    # The resource the event is about: a capture id for charge events, a refund id for refunds,
    # a payment token id for vault events.
    resource_id: str | None
    charge_id: str | None
    order_id: str | None
    amount: Decimal | None
    currency: str | None
    resource_status: str | None
    failure: Failure | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
