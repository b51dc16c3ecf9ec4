"""Stripe through the official SDK (`stripe`, pinned). One `StripeClient` per tenant's keys; the
API's base address comes from configuration only (`STRIPE_API_BASE`: Stripe itself by default,
localstripe under `make run` and the tests). Nothing here knows which one answers.

A charge is a PaymentIntent made in two steps, each with an idempotency key derived from the
ledger row (`<key>:create`, `<key>:confirm`): create (moves no money), record its id, confirm off
session. A crash after the create leaves at most an unconfirmed intent; after the confirm, the
recorded id lets recovery ask Stripe what happened (`charge_get`)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import requests
import stripe
from requests.adapters import HTTPAdapter

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
    PaymentMethodInfo,
    RefundRequest,
    RefundResult,
    SetupSession,
    WebhookRejected,
)

# Stripe's own currency rules (https://docs.stripe.com/currencies): amounts are integers in these
# units, which are not always ISO 4217's (ISK and UGX are zero-decimal at Stripe).
ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())  # noqa: SIM905
WEBHOOK_TOLERANCE = 300  # seconds: Stripe's own default, the 5 minutes
# Kept-alive connections to the API per client (a process's collection threads share it).
HTTP_POOL_SIZE = 16

# Stripe's decline codes (https://docs.stripe.com/declines/codes) → ours. What is not listed is a
# soft decline: the issuer said no without saying retrying is pointless.
_HARD = frozenset(
    {
        "fraudulent",
        "lost_card",
        "stolen_card",
        "pickup_card",
        "restricted_card",
        "merchant_blacklist",
        "security_violation",
        "do_not_try_again",
        "card_not_supported",
        "currency_not_supported",
        "invalid_account",
        "new_account_information_available",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "transaction_not_allowed",
        "incorrect_number",
        "invalid_number",
        "account_closed",
        "no_account",
        "debit_not_authorized",
    }
)
_BY_CODE = {
    "insufficient_funds": FailureCode.INSUFFICIENT_FUNDS,
    "expired_card": FailureCode.EXPIRED_CARD,
    "authentication_required": FailureCode.AUTHENTICATION_REQUIRED,
    "payment_intent_authentication_failure": FailureCode.AUTHENTICATION_REQUIRED,
    "card_decline_rate_limit_exceeded": FailureCode.SOFT_DECLINE,
    "processing_error": FailureCode.PROCESSING_ERROR,
}


def to_minor(amount: Money) -> int:
    if amount.currency in ZERO_DECIMAL:
        exponent = 0
    elif amount.currency in THREE_DECIMAL:
        exponent = 3
    else:
        exponent = 2
    scaled = amount.amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise GatewayError(f"{amount.amount} {amount.currency} has more decimals than Stripe takes", code="bad_amount")
    return int(scaled)


def from_minor(value: int, currency: str) -> Money:
    currency = currency.upper()
    exponent = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    return Money(Decimal(value).scaleb(-exponent), currency)


def failure_normalize(*, code: str | None, decline_code: str | None, message: str) -> Failure:
    gateway_code = decline_code or code or ""
    for candidate in (decline_code, code):
        if candidate in _BY_CODE:
            return Failure(_BY_CODE[candidate], message, gateway_code)
        if candidate in _HARD:
            return Failure(FailureCode.HARD_DECLINE, message, gateway_code)
    if code in ("card_declined", "bank_account_declined", None, "") or decline_code:
        return Failure(FailureCode.SOFT_DECLINE, message, gateway_code)
    return Failure(FailureCode.PROCESSING_ERROR, message, gateway_code)


def _get(obj, key, default=None):
    try:
        value = obj[key]
    except (KeyError, TypeError):
        return default
    return default if value is None else value


def charge_result(intent) -> ChargeResult:
    """A PaymentIntent (SDK object or plain dict from a webhook) → ChargeResult."""
    status = _get(intent, "status")
    error = _get(intent, "last_payment_error")
    latest = _get(intent, "latest_charge", "")
    charge_id = latest if isinstance(latest, str) else _get(latest, "id", "")
    method = _get(intent, "payment_method", "")
    method_id = method if isinstance(method, str) else _get(method, "id", "")
    failure = None
    if status == "requires_payment_method" and error:
        normalized, failure = (
            ChargeStatus.FAILED,
            failure_normalize(
                code=_get(error, "code"), decline_code=_get(error, "decline_code"), message=_get(error, "message", "")
            ),
        )
    elif status == "requires_payment_method" and not method_id:
        # 3-D Secure failed: Stripe detaches the method from the intent
        normalized = ChargeStatus.FAILED
        failure = Failure(FailureCode.AUTHENTICATION_REQUIRED, "Authentication failed.", "authentication_failed")
    elif status == "requires_action":
        normalized = ChargeStatus.REQUIRES_ACTION
        failure = Failure(FailureCode.AUTHENTICATION_REQUIRED, "The customer must authenticate.", "requires_action")
    else:
        normalized = {
            "requires_confirmation": ChargeStatus.CREATED,
            "requires_payment_method": ChargeStatus.CREATED,
            "processing": ChargeStatus.PROCESSING,
            "requires_capture": ChargeStatus.PROCESSING,
            "succeeded": ChargeStatus.SUCCEEDED,
            "canceled": ChargeStatus.CANCELED,
        }.get(status, ChargeStatus.PROCESSING)
    return ChargeResult(
        id=_get(intent, "id"),
        status=normalized,
        amount=from_minor(int(_get(intent, "amount", 0)), _get(intent, "currency", "usd")),
        payment_method_id=method_id,
        failure=failure,
        charge_id=charge_id or "",
        client_secret=_get(intent, "client_secret", "") if normalized == ChargeStatus.REQUIRES_ACTION else "",
    )


def _refund_result(refund) -> RefundResult:
    return RefundResult(
        id=_get(refund, "id"),
        status=_get(refund, "status", "pending"),
        amount=from_minor(int(_get(refund, "amount", 0)), _get(refund, "currency", "usd")),
    )


def _method_info(method) -> PaymentMethodInfo:
    kind = _get(method, "type", "")
    details = _get(method, kind, {}) or {}
    last4 = _get(details, "last4", "")
    if kind == "card":
        label = f"{_get(details, 'brand', 'card')} •••• {last4}"
        expires = f"{int(_get(details, 'exp_month', 0)):02d}/{_get(details, 'exp_year', '')}"
    else:
        label = f"{'SEPA' if kind == 'sepa_debit' else 'ACH' if kind == 'us_bank_account' else kind} •••• {last4}"
        expires = ""
    return PaymentMethodInfo(id=_get(method, "id"), type=kind, label=label, expires=expires)


def _http_client(api_base: str, timeout: float) -> stripe.RequestsClient:
    """The SDK's requests client on one session that all of this client's threads share (its
    pool keeps their connections alive), with requests' reading of the environment done once here
    instead of per call: with `trust_env` on, every request scanned all of os.environ twice for
    proxies and looked for a ~/.netrc, a fifth of a charge's CPU (bench/payments.py). The proxies
    the environment names for the API's address (HTTPS_PROXY, NO_PROXY) are passed to the SDK as
    its own `proxy`; a ~/.netrc is not read (its credentials would have replaced the API key)."""
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=HTTP_POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    proxies = requests.utils.get_environ_proxies(api_base)
    proxy = {scheme: proxies[scheme] for scheme in ("http", "https") if proxies.get(scheme)}
    return stripe.RequestsClient(timeout=timeout, session=session, proxy=proxy or None)


class StripeGateway:
    name = "stripe"

    def __init__(self, *, secret_key: str, publishable_key: str, api_base: str, timeout: float = 20.0):
        self.publishable_key = publishable_key
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            # Our own retries (the outbox's) reuse the idempotency key; the SDK's would too, but a
            # request that hangs must give the worker back well inside the outbox lease.
            max_network_retries=1,
            http_client=_http_client(api_base, timeout),
        )

    # -- errors ------------------------------------------------------------------------------

    def _call(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            raise GatewayDown(f"Stripe unreachable: {error.user_message or error}") from error
        except stripe.StripeError as error:
            if (error.http_status or 0) >= 500:
                raise GatewayDown(f"Stripe answered {error.http_status}: {error.user_message or error}") from error
            raise

    # -- customers and methods -----------------------------------------------------------------

    def customer_ensure(self, *, customer_id: str, email: str, name: str, reference: str) -> str:
        if customer_id:
            try:
                found = self._call(self.client.v1.customers.retrieve, customer_id)
                if not _get(found, "deleted", False):
                    return customer_id
            except stripe.InvalidRequestError:
                pass  # gone (a fresh localstripe, another account): make a new one
        params = {"email": email, "name": name, "metadata": {"organization": reference}}
        try:
            created = self._call(
                self.client.v1.customers.create,
                params={k: v for k, v in params.items() if v},
                options={"idempotency_key": f"customer:{reference}:{customer_id or 'new'}"},
            )
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error)) from error
        return created.id

    def setup_start(self, *, customer_id: str, method_types: list[str]) -> SetupSession:
        try:
            intent = self._call(
                self.client.v1.setup_intents.create,
                params={"customer": customer_id, "usage": "off_session", "payment_method_types": method_types},
            )
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error)) from error
        return SetupSession(id=intent.id, client_secret=intent.client_secret, publishable_key=self.publishable_key)

    def setup_method_get(self, *, setup_id: str, customer_id: str) -> PaymentMethodInfo:
        try:
            intent = self._call(self.client.v1.setup_intents.retrieve, setup_id)
        except stripe.InvalidRequestError as error:
            raise GatewayError(str(error.user_message or error), code="setup_incomplete") from error
        method = _get(intent, "payment_method", "")
        method_id = method if isinstance(method, str) else _get(method, "id", "")
        if _get(intent, "customer") != customer_id or _get(intent, "status") != "succeeded" or not method_id:
            raise GatewayError("The card was not saved for this customer.", code="setup_incomplete")
        try:
            found = self._call(self.client.v1.payment_methods.retrieve, method_id)
            if _get(found, "customer") != customer_id:
                # Stripe attaches the method of a customer's SetupIntent itself; asking again is
                # harmless, and a gateway that did not (localstripe) gets it attached here.
                found = self._call(self.client.v1.payment_methods.attach, method_id, params={"customer": customer_id})
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error), code="setup_incomplete") from error
        return _method_info(found)

    def payment_methods_list(self, *, customer_id: str) -> list[PaymentMethodInfo]:
        found = []
        for kind in ("card", "sepa_debit", "us_bank_account"):
            try:
                page = self._call(self.client.v1.payment_methods.list, params={"customer": customer_id, "type": kind})
            except stripe.InvalidRequestError:
                continue  # a type this account (or API) does not offer
            found.extend(_method_info(method) for method in page.data)
        return found

    def payment_method_get(self, *, payment_method_id: str) -> PaymentMethodInfo:
        try:
            return _method_info(self._call(self.client.v1.payment_methods.retrieve, payment_method_id))
        except stripe.InvalidRequestError as error:
            raise GatewayError(str(error.user_message or error), code="unknown_payment_method") from error

    def payment_method_detach(self, *, payment_method_id: str) -> None:
        try:
            self._call(self.client.v1.payment_methods.detach, payment_method_id)
        except stripe.InvalidRequestError as error:
            raise GatewayError(str(error.user_message or error), code="unknown_payment_method") from error

    # -- charges -------------------------------------------------------------------------------

    def charge_create(self, request: ChargeRequest) -> ChargeResult:
        params = {
            "amount": to_minor(request.amount),
            "currency": request.amount.currency.lower(),
            "customer": request.customer_id,
            "payment_method": request.payment_method_id,
            "payment_method_types": [str(request.method_type)],
            "metadata": dict(request.metadata),
        }
        try:
            intent = self._call(
                self.client.v1.payment_intents.create,
                params=params,
                options={"idempotency_key": f"{request.idempotency_key}:create"},
            )
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error)) from error
        return charge_result(intent)

    def charge_confirm(self, *, charge_id: str, idempotency_key: str) -> ChargeResult:
        try:
            intent = self._call(
                self.client.v1.payment_intents.confirm,
                charge_id,
                params={"off_session": True},
                options={"idempotency_key": f"{idempotency_key}:confirm"},
            )
        except stripe.CardError as error:
            # A decline: the intent holds the outcome (Stripe sends it in the error; ask when not).
            intent = _get(error.json_body.get("error", {}) if error.json_body else {}, "payment_intent")
            if intent:
                return charge_result(intent)
            result = self.charge_get(charge_id=charge_id)
            if result.failure is not None:
                return result
            err = error.json_body.get("error", {}) if error.json_body else {}
            return ChargeResult(
                id=charge_id,
                status=ChargeStatus.FAILED,
                amount=result.amount,
                payment_method_id=result.payment_method_id,
                failure=failure_normalize(
                    code=err.get("code"), decline_code=err.get("decline_code"), message=err.get("message", "")
                ),
            )
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error)) from error
        return charge_result(intent)

    def charge_get(self, *, charge_id: str) -> ChargeResult:
        try:
            return charge_result(self._call(self.client.v1.payment_intents.retrieve, charge_id))
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error)) from error

    def refund(self, request: RefundRequest) -> RefundResult:
        try:
            refund = self._call(
                self.client.v1.refunds.create,
                params={"payment_intent": request.charge_id, "amount": to_minor(request.amount)},
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error), code="refund_refused") from error
        return _refund_result(refund)

    # -- webhooks ------------------------------------------------------------------------------

    def webhook_parse(self, *, body: bytes, headers: dict[str, str], secret: str) -> GatewayEvent:
        return stripe_webhook_parse(body=body, headers=headers, secret=secret)


def stripe_webhook_parse(*, body: bytes, headers: dict[str, str], secret: str) -> GatewayEvent:
    """A webhook verified with the SDK's signature check (WEBHOOK_TOLERANCE both ways) and
    normalized; WebhookRejected when it does not verify. Needs no client (the inbound path calls it
    without building one)."""
    signature = headers.get("stripe-signature", "")
    if not secret or not signature:
        raise WebhookRejected("missing signature or secret")
    try:
        stripe.WebhookSignature.verify_header(body.decode("utf-8"), signature, secret, WEBHOOK_TOLERANCE)
        # The SDK refuses timestamps too old only; one too far ahead is refused too.
        stamp = int(dict(p.split("=", 1) for p in signature.split(",") if "=" in p).get("t", "0"))
        if stamp > time.time() + WEBHOOK_TOLERANCE:
            raise WebhookRejected("timestamp too far in the future")
        event = json.loads(body)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as error:
        raise WebhookRejected(str(error)) from error
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or "type" not in event:
        raise WebhookRejected("not an event")
    return stripe_event(event)


def stripe_event(event: dict) -> GatewayEvent:
    """A Stripe event (verified, or read back from its stored record), normalized."""
    obj = (event.get("data") or {}).get("object") or {}
    kind = obj.get("object") if isinstance(obj, dict) else None
    charge = charge_result(obj) if kind == "payment_intent" else None
    refund = _refund_result(obj) if kind == "refund" else None
    return GatewayEvent(
        id=event["id"],
        type=str(event["type"]),
        created=datetime.fromtimestamp(int(event.get("created") or 0), tz=UTC),
        payload=event,
        charge=charge,
        refund=refund,
        refund_charge_id=str(obj.get("payment_intent") or "") if refund else "",
        method=_method_info(obj) if kind == "payment_method" else None,
    )
