"""The PayPal adapter: Vault v3, Orders v2 and Payments v2 through `paypal-server-sdk`.

How usage billing uses PayPal (STACK-NOTES): the payer approves once in PayPal's own pages (a vault
setup token turned into a payment token); each invoice is then charged off session by creating an
Orders v2 order with `intent: CAPTURE` and `payment_source.paypal.vault_id`, which PayPal captures
in the same call. PayPal Subscriptions are not used: the amount changes every period.

Idempotency is PayPal's PayPal-Request-Id header, required on that single-step order. PayPal keeps
keys for 6 hours by default (up to 72 on request): within that window, repeating `charge` with the
same key returns the original order and capture instead of charging again, which is how a caller
that crashed between the request and recording its result recovers. After the window a replay
would be a new charge, so recovery past it must go by the order or capture id, or by the
`invoice_id` PayPal refuses to reuse (DUPLICATE_INVOICE_ID) where the account blocks duplicates.

The base URL is configuration: PayPal live (`PAYPAL_LIVE_URL`), the sandbox, or a local server that
speaks the same API; nothing here knows which. The SDK fetches and caches the OAuth2 token
(client credentials) per instance, so keep one instance per PayPal account.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from apimatic_core.exceptions.auth_validation_exception import AuthValidationException
from paypalserversdk.configuration import Configuration, Server
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.models.amount_with_breakdown import AmountWithBreakdown
from paypalserversdk.models.customer import Customer
from paypalserversdk.models.money import Money as PayPalMoney
from paypalserversdk.models.order_request import OrderRequest
from paypalserversdk.models.payment_source import PaymentSource
from paypalserversdk.models.payment_token_request import PaymentTokenRequest
from paypalserversdk.models.payment_token_request_payment_source import PaymentTokenRequestPaymentSource
from paypalserversdk.models.paypal_wallet import PaypalWallet
from paypalserversdk.models.paypal_wallet_experience_context import PaypalWalletExperienceContext
from paypalserversdk.models.purchase_unit_request import PurchaseUnitRequest
from paypalserversdk.models.refund_request import RefundRequest
from paypalserversdk.models.setup_token_request import SetupTokenRequest
from paypalserversdk.models.setup_token_request_payment_source import SetupTokenRequestPaymentSource
from paypalserversdk.models.vault_experience_context import VaultExperienceContext
from paypalserversdk.models.vault_paypal_wallet_request import VaultPaypalWalletRequest
from paypalserversdk.models.vault_token_request import VaultTokenRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from payments.paypal.failures import failure_from_issue, failure_from_processor
from payments.paypal.types import (
    ChargeResult,
    ChargeStatus,
    CustomerRef,
    Failure,
    FailureCode,
    RefundResult,
    RefundStatus,
    SavedMethod,
    SetupSession,
    WebhookEvent,
)
from payments.paypal.webhooks import CertificateSource, certificate_source_from_settings, event_parse, webhook_verify

PAYPAL_LIVE_URL = "https://api-m.paypal.com"
PAYPAL_SANDBOX_URL = "https://api-m.sandbox.paypal.com"

# PayPal's currency table: these three take no decimals, every other supported currency two
# (PayPal supports no three-decimal currency). developer.paypal.com/reference/currency-codes.
_ZERO_DECIMAL = frozenset({"HUF", "JPY", "TWD"})
# "1 <= length <= 108" for PayPal-Request-Id.
_MAX_REQUEST_ID = 108


class PayPalError(Exception):
    """A vault call (saving or removing a method) that PayPal refused or could not answer."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.code}: {failure.gateway_code} {failure.message}".strip())
        self.failure = failure


@dataclass(frozen=True, slots=True)
class PayPalConfig:
    """One PayPal REST app: its credentials, the webhook it registered (whose id is part of every
    signature PayPal sends to it), and where the API lives."""

    base_url: str
    client_id: str
    client_secret: str
    webhook_id: str
    timeout: float = 30.0


class _Configuration(Configuration):
    """The SDK's configuration with the base URL given, instead of one of its two environments."""

    def __init__(self, *, base_url: str, **kwargs: Any) -> None:
        self._base_url = base_url.rstrip("/")
        super().__init__(**kwargs)

    def get_base_uri(self, server: Server = Server.DEFAULT) -> str:
        return self._base_url


def amount_value(amount: Decimal, currency: str) -> str:
    """`amount` as PayPal's decimal string for `currency`. Refuses (ValueError) what PayPal would
    refuse, rather than rounding money silently: non-positive amounts and more decimals than the
    currency has."""
    currency = currency.upper()
    places = 0 if currency in _ZERO_DECIMAL else 2
    try:
        quantum = Decimal(1).scaleb(-places)
        value = amount.quantize(quantum)
    except InvalidOperation as exc:
        raise ValueError(f"{amount!r} is not an amount") from exc
    if value != amount:
        raise ValueError(f"{amount} has more decimals than {currency} allows on PayPal ({places})")
    if value <= 0:
        raise ValueError("PayPal amounts are positive")
    return format(value, "f")


def _get(obj: Any, *path: str) -> Any:
    """A nested attribute of an SDK model, or None: the SDK leaves absent fields unset."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj


def _first(items: Any) -> Any:
    return items[0] if items else None


def _link(obj: Any, rel: str) -> str | None:
    for link in _get(obj, "links") or ():
        if _get(link, "rel") == rel:
            return _get(link, "href")
    return None


def _money(obj: Any) -> tuple[Decimal | None, str | None]:
    value, currency = _get(obj, "amount", "value"), _get(obj, "amount", "currency_code")
    try:
        return (Decimal(value) if value is not None else None), currency
    except InvalidOperation:
        return None, currency


def _status_of(failure: Failure) -> ChargeStatus:
    if failure.code is FailureCode.GATEWAY_DOWN:
        return ChargeStatus.ERROR
    if failure.code is FailureCode.AUTHENTICATION_REQUIRED:
        return ChargeStatus.REQUIRES_ACTION
    return ChargeStatus.FAILED


def _request_id(key: str) -> str:
    if not key or len(key) > _MAX_REQUEST_ID:
        raise ValueError(f"idempotency key must be 1..{_MAX_REQUEST_ID} characters")
    return key


class PayPalGateway:
    """PayPal behind the gateway interface's vocabulary. Charges and refunds report failures in
    their result (never raise for a decline or an outage); vault calls raise PayPalError."""

    name = "paypal"

    def __init__(self, config: PayPalConfig, *, certificates: CertificateSource | None = None) -> None:
        self.config = config
        self._certificates = certificates
        credentials = ClientCredentialsAuthCredentials(
            o_auth_client_id=config.client_id,
            o_auth_client_secret=config.client_secret,
            # With a provider the SDK lets a failed token request raise (status and all), where
            # its default swallows it and fails later with a bare "token undefined".
            o_auth_token_provider=lambda _last, manager: manager.fetch_token(),
        )
        self._sdk = PaypalServersdkClient(
            config=_Configuration(
                base_url=config.base_url,
                timeout=config.timeout,
                # Never retried inside the SDK: a retry is the caller's decision, under the same key.
                max_retries=0,
                client_credentials_auth_credentials=credentials,
            )
        )

    # -- calls ---------------------------------------------------------------------------------

    def _call(self, method: Callable[[dict[str, Any]], Any], options: dict[str, Any]) -> tuple[Any, Failure | None]:
        try:
            response = method(options)
        except ApiException as exc:
            return None, self._failure_of(exc)
        except AuthValidationException as exc:
            return None, Failure(FailureCode.PROCESSING_ERROR, "AUTHENTICATION_FAILURE", str(exc))
        except requests.RequestException as exc:
            # Refused, reset or timed out: PayPal may or may not have acted. The same key tells.
            return None, Failure(FailureCode.GATEWAY_DOWN, type(exc).__name__, str(exc)[:200])
        return response.body, None

    @staticmethod
    def _failure_of(exc: ApiException) -> Failure:
        issue = _get(_first(getattr(exc, "details", None)), "issue") or getattr(exc, "name", None)
        # The token endpoint answers OAuth2 errors ({"error": "invalid_client"}).
        issue = issue or getattr(exc, "error", None)
        message = getattr(exc, "message", None) or getattr(exc, "error_description", None) or ""
        if issue is None:
            # A status the SDK declares no error model for (a 404 on DELETE) comes as a bare
            # ApiException: PayPal's error body is still there.
            try:
                body = json.loads(_get(exc, "response", "text") or "")
            except ValueError:
                body = None
            if isinstance(body, dict):
                details = body.get("details")
                first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
                issue = first.get("issue") or body.get("name")
                message = body.get("message") or message
        return failure_from_issue(issue, status_code=exc.response_code, message=str(message)[:300])

    # -- customers and methods -----------------------------------------------------------------

    def ensure_customer(self, *, merchant_customer_id: str, existing_id: str | None = None) -> CustomerRef:
        """No call: PayPal creates the vault customer with the first setup token (its id comes
        back in `SetupSession.customer_id`); later setups name it so tokens stay together."""
        return CustomerRef(id=existing_id, merchant_customer_id=merchant_customer_id)

    def start_setup(
        self,
        *,
        customer: CustomerRef,
        return_url: str,
        cancel_url: str,
        idempotency_key: str,
        description: str | None = None,
        brand_name: str | None = None,
    ) -> SetupSession:
        """Create a vault setup token for a PayPal wallet; the payer approves at `approve_url`."""
        context = VaultExperienceContext(
            return_url=return_url, cancel_url=cancel_url, shipping_preference="NO_SHIPPING"
        )
        if brand_name:
            context.brand_name = brand_name
        wallet = VaultPaypalWalletRequest(
            usage_type="MERCHANT",
            customer_type="CONSUMER",
            permit_multiple_payment_tokens=False,
            experience_context=context,
        )
        if description:
            wallet.description = description
        request_customer = (
            Customer(id=customer.id) if customer.id else Customer(merchant_customer_id=customer.merchant_customer_id)
        )
        body, failure = self._call(
            self._sdk.vault.create_setup_token,
            {
                "body": SetupTokenRequest(
                    payment_source=SetupTokenRequestPaymentSource(paypal=wallet), customer=request_customer
                ),
                "paypal_request_id": _request_id(idempotency_key),
            },
        )
        if failure:
            raise PayPalError(failure)
        approve_url = _link(body, "approve")
        if not body.id or not approve_url:
            raise PayPalError(Failure(FailureCode.PROCESSING_ERROR, "NO_APPROVE_LINK", "setup token without approval"))
        return SetupSession(
            setup_token_id=body.id,
            approve_url=approve_url,
            customer_id=_get(body, "customer", "id") or customer.id,
            status=_get(body, "status") or "",
        )

    def finish_setup(self, *, setup_token_id: str, idempotency_key: str) -> SavedMethod:
        """Turn an approved setup token into a payment token (the saved method)."""
        body, failure = self._call(
            self._sdk.vault.create_payment_token,
            {
                "body": PaymentTokenRequest(
                    payment_source=PaymentTokenRequestPaymentSource(
                        token=VaultTokenRequest(id=setup_token_id, mtype="SETUP_TOKEN")
                    )
                ),
                "paypal_request_id": _request_id(idempotency_key),
            },
        )
        if failure:
            raise PayPalError(failure)
        return SavedMethod(
            id=body.id,
            customer_id=_get(body, "customer", "id"),
            kind="paypal",
            label=_get(body, "payment_source", "paypal", "email_address") or "PayPal",
        )

    def remove_method(self, *, method_id: str) -> None:
        # This SDK method takes the id positionally, unlike the options dict of the others.
        _body, failure = self._call(lambda _options: self._sdk.vault.delete_payment_token(method_id), {})
        if failure:
            raise PayPalError(failure)

    # -- charges ---------------------------------------------------------------------------------

    def charge(
        self,
        *,
        method_id: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        invoice_id: str | None = None,
        description: str | None = None,
    ) -> ChargeResult:
        """Charge a vaulted PayPal payment token off session. Repeating the call with the same
        `idempotency_key` (within PayPal's key window) returns the first outcome."""
        unit = PurchaseUnitRequest(
            amount=AmountWithBreakdown(currency_code=currency.upper(), value=amount_value(amount, currency))
        )
        if invoice_id:
            unit.invoice_id = invoice_id
        if description:
            unit.description = description[:127]
        order, failure = self._call(
            self._sdk.orders.create_order,
            {
                "body": OrderRequest(
                    intent="CAPTURE",
                    purchase_units=[unit],
                    payment_source=PaymentSource(paypal=PaypalWallet(vault_id=method_id)),
                ),
                "paypal_request_id": _request_id(idempotency_key),
                "prefer": "return=representation",
            },
        )
        if failure:
            return ChargeResult(_status_of(failure), None, None, None, None, failure)
        return self._from_order(order)

    def start_checkout(
        self,
        *,
        amount: Decimal,
        currency: str,
        return_url: str,
        cancel_url: str,
        idempotency_key: str,
        invoice_id: str | None = None,
    ) -> ChargeResult:
        """Pay now with the payer present (no saved method): an order the payer approves at
        `approve_url`, then `capture` with its order id."""
        unit = PurchaseUnitRequest(
            amount=AmountWithBreakdown(currency_code=currency.upper(), value=amount_value(amount, currency))
        )
        if invoice_id:
            unit.invoice_id = invoice_id
        context = PaypalWalletExperienceContext(
            return_url=return_url, cancel_url=cancel_url, shipping_preference="NO_SHIPPING", user_action="PAY_NOW"
        )
        order, failure = self._call(
            self._sdk.orders.create_order,
            {
                "body": OrderRequest(
                    intent="CAPTURE",
                    purchase_units=[unit],
                    payment_source=PaymentSource(paypal=PaypalWallet(experience_context=context)),
                ),
                "paypal_request_id": _request_id(idempotency_key),
                "prefer": "return=representation",
            },
        )
        if failure:
            return ChargeResult(_status_of(failure), None, None, None, None, failure)
        return self._from_order(order)

    def capture(self, *, order_id: str, idempotency_key: str) -> ChargeResult:
        """Capture an order the payer approved."""
        order, failure = self._call(
            self._sdk.orders.capture_order,
            {"id": order_id, "paypal_request_id": _request_id(idempotency_key), "prefer": "return=representation"},
        )
        if failure:
            return ChargeResult(_status_of(failure), None, order_id, None, None, failure)
        return self._from_order(order)

    def fetch_order(self, *, order_id: str) -> ChargeResult:
        """What became of an order (crash recovery when the order id was recorded)."""
        order, failure = self._call(self._sdk.orders.get_order, {"id": order_id})
        if failure:
            return ChargeResult(ChargeStatus.ERROR, None, order_id, None, None, failure)
        return self._from_order(order)

    def fetch_charge(self, *, charge_id: str) -> ChargeResult:
        """The current state of a capture (a PENDING one settles later; a refunded one stays
        succeeded: the charge happened, refunds are their own records)."""
        capture, failure = self._call(self._sdk.payments.get_captured_payment, {"capture_id": charge_id})
        if failure:
            return ChargeResult(ChargeStatus.ERROR, charge_id, None, None, None, failure)
        order_id = _get(capture, "supplementary_data", "related_ids", "order_id")
        return self._from_capture(capture, order_id)

    def _from_order(self, order: Any) -> ChargeResult:
        status = _get(order, "status")
        unit = _first(_get(order, "purchase_units"))
        capture = _first(_get(unit, "payments", "captures"))
        if capture is not None:
            return self._from_capture(capture, order.id)
        amount, currency = _money(unit)
        if status in ("PAYER_ACTION_REQUIRED", "CREATED", "APPROVED"):
            approve_url = _link(order, "payer-action") or _link(order, "approve")
            return ChargeResult(ChargeStatus.REQUIRES_ACTION, None, order.id, amount, currency, None, approve_url)
        failure = Failure(FailureCode.PROCESSING_ERROR, f"ORDER_{status}", "order has no capture")
        return ChargeResult(ChargeStatus.FAILED, None, _get(order, "id"), amount, currency, failure)

    @staticmethod
    def _from_capture(capture: Any, order_id: str | None) -> ChargeResult:
        amount, currency = _money(capture)
        status = _get(capture, "status")
        if status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
            return ChargeResult(ChargeStatus.SUCCEEDED, capture.id, order_id, amount, currency)
        if status == "PENDING":
            return ChargeResult(ChargeStatus.PENDING, capture.id, order_id, amount, currency)
        failure = failure_from_processor(
            _get(capture, "processor_response", "response_code"),
            message=_get(capture, "status_details", "reason") or "",
        )
        return ChargeResult(ChargeStatus.FAILED, capture.id, order_id, amount, currency, failure)

    # -- refunds ---------------------------------------------------------------------------------

    def refund(
        self,
        *,
        charge_id: str,
        idempotency_key: str,
        amount: Decimal | None = None,
        currency: str | None = None,
        invoice_id: str | None = None,
        note_to_payer: str | None = None,
    ) -> RefundResult:
        """Refund a capture, in full (amount None) or in part."""
        request = RefundRequest()
        if amount is not None:
            if not currency:
                raise ValueError("a partial refund needs its currency")
            request.amount = PayPalMoney(currency_code=currency.upper(), value=amount_value(amount, currency))
        if invoice_id:
            request.invoice_id = invoice_id
        if note_to_payer:
            request.note_to_payer = note_to_payer[:255]
        refund, failure = self._call(
            self._sdk.payments.refund_captured_payment,
            {
                "capture_id": charge_id,
                "body": request,
                "paypal_request_id": _request_id(idempotency_key),
                "prefer": "return=representation",
            },
        )
        if failure:
            status = RefundStatus.ERROR if failure.code is FailureCode.GATEWAY_DOWN else RefundStatus.FAILED
            return RefundResult(status, None, charge_id, amount, currency, failure)
        value, code = _money(refund)
        state = _get(refund, "status")
        if state == "COMPLETED":
            return RefundResult(RefundStatus.SUCCEEDED, refund.id, charge_id, value, code)
        if state == "PENDING":
            return RefundResult(RefundStatus.PENDING, refund.id, charge_id, value, code)
        reason = _get(refund, "status_details", "reason") or f"REFUND_{state}"
        failed = Failure(FailureCode.PROCESSING_ERROR, str(reason))
        return RefundResult(RefundStatus.FAILED, refund.id, charge_id, value, code, failed)

    # -- webhooks --------------------------------------------------------------------------------

    def parse_webhook(self, *, body: bytes, headers: Mapping[str, str], now: datetime | None = None) -> WebhookEvent:
        """Verify (raises WebhookRejected) and normalize one webhook request for this app's
        webhook id. `body` must be the raw bytes received: the CRC32 is over them."""
        certificates = self._certificates or certificate_source_from_settings()
        event = webhook_verify(
            body=body, headers=headers, webhook_id=self.config.webhook_id, certificates=certificates, now=now
        )
        return event_parse(event)
