"""A small HTTP proxy in front of localstripe that closes its known gaps, so the gateway code never
needs a special case (STACK-NOTES: "Stripe offline with localstripe"). Development support, not
part of the platform: `config.embedded` runs it as its own process in front of the localstripe it
starts (`python -m config.devstripe --upstream URL --port N`, for `make run` and the tests), and
the gateway reaches it by STRIPE_API_BASE alone; tests that need faults or request counts put
their own in front of it with `stripe_proxy(upstream)`. No domain code imports this module.

- idempotency keys: localstripe ignores them; here a POST with a key seen before answers the
  first answer again, as Stripe does (for 24 hours there);
- `GET /v1/account`: localstripe has none;
- `off_session` on a PaymentIntent confirm: localstripe refuses the parameter (its confirms are
  all off session anyway);
- decline codes: localstripe declines every card with `card_declined` and no decline code. Cards
  in DECLINES are created at localstripe as its "declines on charge" card, and the proxy puts the
  code Stripe gives for that test card back on the PaymentIntent and on the 402 error (Stripe
  also puts the PaymentIntent in the error; localstripe does not, the proxy does);
- payment method lists: localstripe lists cards only; the proxy answers the other types from the
  attachments it saw;
- faults: `down` answers 503 without forwarding; `lose_answers` forwards and then answers 502
  (the request reached Stripe, the answer was lost: the case idempotency keys exist for);
- US ACH debit (`us_bank_account`): localstripe has none, so the proxy answers it itself, in
  Stripe's shapes: payment methods from a routing and account number (Stripe's test accounts,
  ACH_ACCOUNTS, pick the outcome; only the last four and the bank's name are ever answered),
  SetupIntents and PaymentIntents whose `payment_method_types` is `us_bank_account`, and refunds
  of those. A confirmed ACH PaymentIntent stays `processing`, as at Stripe (days there), until it
  settles: after `ach_settle_seconds` when set (`--ach-settle-seconds`, for `make run`), or when
  `POST /_devstripe/payment_intents/{id}/settle` (or `ProxyState.ach_settle`) says so. Settling
  sends `payment_intent.succeeded` or `payment_intent.payment_failed` to the webhooks registered
  through the proxy (`POST /_config/webhooks/{id}`, which also reaches localstripe), signed as
  Stripe and localstripe sign them.

Requests are counted per path for the tests' "never a second charge" assertions. Remembered
answers for idempotency keys are kept for 24 hours, as Stripe keeps them (a long `make run` would
otherwise grow without bound)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from stdnum.us import rtn

# Stripe test card → (code, decline_code) it fails with (https://docs.stripe.com/testing#declined-payments).
DECLINES = {
    "4000000000009995": ("card_declined", "insufficient_funds"),
    "4000000000009987": ("card_declined", "lost_card"),
    "4000000000009979": ("card_declined", "stolen_card"),
    "4000000000000069": ("expired_card", None),
    "4000000000000119": ("processing_error", None),
    "4000000000000002": ("card_declined", "generic_decline"),
}
LOCALSTRIPE_DECLINES_ON_CHARGE = "4000000000000341"

# Stripe's test bank accounts (routing 110000000; https://docs.stripe.com/connect/testing, the
# same numbers as ACH Direct Debit's tests) → the failure code the debit returns with, after it
# was processing (None: it succeeds). Any other valid account succeeds, as in Stripe's test mode.
ACH_ACCOUNTS = {
    "000123456789": None,
    "000111111113": "account_closed",  # NACHA return R02
    "000111111116": "no_account",  # R03
    "000222222227": "insufficient_funds",  # R01
    "000333333335": "debit_not_authorized",  # R10
}
ACH_MESSAGES = {
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "insufficient_funds": "The customer's account has insufficient funds to cover this payment.",
    "debit_not_authorized": "The customer has notified their bank that this payment was unauthorized.",
}
ACH_BANKS = {"110000000": "STRIPE TEST BANK"}

# Stripe.js's missing parts and the element frames they mount (see the files' own comments).
ASSETS = Path(__file__).resolve().parent / "devstripe_assets"
STRIPE_JS_EXTENSION = (ASSETS / "stripe-extension.js").read_bytes()
ELEMENT_FRAME = (ASSETS / "frame.html").read_bytes()

ACCOUNT = {"id": "acct_1LocalStripeTest000", "object": "account", "country": "US", "default_currency": "usd"}


@dataclass
class ProxyState:
    upstream: str
    url: str = ""
    down: bool = False
    lose_answers: int = 0  # the next n forwarded POSTs lose their answer
    requests: Counter = field(default_factory=Counter)  # "METHOD /path" → count (forwarded ones)
    _replies: dict = field(default_factory=dict)
    _declines: dict = field(default_factory=dict)  # payment method id → (code, decline_code)
    _intents: dict = field(default_factory=dict)  # payment intent id → payment method id
    _attached: dict = field(default_factory=dict)  # payment method id → its object (non-card types)
    ach_settle_seconds: float | None = None  # None: ACH debits settle only when told to
    webhooks: dict = field(default_factory=dict)  # id → (url, secret, events) registered through us
    ach: dict = field(default_factory=dict)  # id → object: ACH payment methods, setup and payment intents
    _ach_outcome: dict = field(default_factory=dict)  # ACH payment method id → failure code or None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ach_settle(self, intent_id: str) -> dict:
        """The processing ACH debit settles (or returns, by its account's outcome); its webhook is sent."""
        with self.lock:
            intent = self.ach[intent_id]
            if intent["status"] != "processing":
                return intent
            failure = self._ach_outcome.get(intent["payment_method"])
            if failure:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {
                    "type": "invalid_request_error",
                    "code": failure,
                    "message": ACH_MESSAGES[failure],
                    "payment_method": self.ach[intent["payment_method"]],
                }
                event_type = "payment_intent.payment_failed"
            else:
                intent["status"] = "succeeded"
                intent["amount_received"] = intent["amount"]
                event_type = "payment_intent.succeeded"
            snapshot = json.loads(json.dumps(intent))
        self.event_send(event_type, snapshot)
        return snapshot

    def event_send(self, event_type: str, obj: dict) -> None:
        """One signed delivery to each webhook registered through the proxy (one attempt, like
        localstripe's)."""
        event = {
            "id": _ach_id("evt"),
            "object": "event",
            "api_version": "2017-08-15",
            "created": int(time.time()),
            "livemode": False,
            "type": event_type,
            "data": {"object": obj},
        }
        body = json.dumps(event).encode()
        with self.lock:
            targets = list(self.webhooks.values())
        for url, secret, events in targets:
            if events and event_type not in events:
                continue
            stamp = int(time.time())
            digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            request = urllib.request.Request(  # noqa: S310 (the test's or make run's own endpoint)
                url,
                data=body,
                method="POST",
                headers={"content-type": "application/json", "stripe-signature": f"t={stamp},v1={digest}"},
            )
            with contextlib.suppress(OSError):  # one attempt, as localstripe's
                urllib.request.urlopen(request, timeout=10).close()  # noqa: S310

    def confirms(self) -> int:
        return sum(n for key, n in self.requests.items() if key.startswith("POST") and key.endswith("/confirm"))


def _patch_intent(state: ProxyState, intent: dict) -> dict:
    if not isinstance(intent, dict) or intent.get("object") != "payment_intent":
        return intent
    method = intent.get("payment_method")
    if intent.get("id") and method:
        state._intents[intent["id"]] = method
    decline = state._declines.get(method or state._intents.get(intent.get("id")))
    error = intent.get("last_payment_error")
    if decline and isinstance(error, dict):
        error["code"], error["decline_code"] = decline
    return intent


REPLAY_SECONDS = 24 * 3600


def _ach_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class _StripeError(Exception):
    def __init__(self, status: int, message: str, *, param: str = "", code: str = ""):
        super().__init__(message)
        self.body = {"error": {"type": "invalid_request_error", "message": message, "param": param, "code": code}}
        self.status = status


def _params(raw: bytes, content_type: str) -> dict:
    """A request's parameters, flat in Stripe's bracket notation (`a[b][0]`), from a form body
    (the SDK's) or a JSON one (Stripe.js's)."""
    if not raw:
        return {}
    if "json" in content_type or raw[:1] == b"{":
        flat: dict = {}

        def walk(prefix: str, value) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}[{k}]" if prefix else str(k), v)
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(f"{prefix}[{i}]", v)
            elif value is not None:
                flat[prefix] = value if isinstance(value, str) else json.dumps(value)

        try:
            walk("", json.loads(raw))
        except ValueError:
            return {}
        return flat
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


def _listed(params: dict, name: str) -> list[str]:
    return [v for k, v in params.items() if k == name or re.fullmatch(re.escape(name) + r"\[\d*\]", k)]


def _is_ach(params: dict) -> bool:
    return "us_bank_account" in _listed(params, "payment_method_types") or (
        params.get("type") == "us_bank_account" or params.get("payment_method_data[type]") == "us_bank_account"
    )


def _ach_method_create(state: ProxyState, params: dict, prefix: str = "") -> dict:
    def get(name: str, field: str, default: str = "") -> str:
        # `us_bank_account[routing_number]`, or inside `payment_method_data[...]` on an intent
        return params.get(f"{prefix}[{name}][{field}]" if prefix else f"{name}[{field}]", default)

    routing = get("us_bank_account", "routing_number")
    account = get("us_bank_account", "account_number")
    if not rtn.is_valid(routing):
        raise _StripeError(
            400,
            "Routing number must have 9 digits and a valid check digit.",
            param="us_bank_account[routing_number]",
            code="routing_number_invalid",
        )
    if not (account.isdigit() and 4 <= len(account) <= 17):
        raise _StripeError(
            400,
            "Account number must have 4 to 17 digits.",
            param="us_bank_account[account_number]",
            code="account_number_invalid",
        )
    method = {
        "id": _ach_id("pm"),
        "object": "payment_method",
        "type": "us_bank_account",
        "created": int(time.time()),
        "customer": None,
        "livemode": False,
        "billing_details": {
            "name": get("billing_details", "name") or None,
            "email": get("billing_details", "email") or None,
        },
        # Never the account number: Stripe answers its last four, and so does this.
        "us_bank_account": {
            "account_holder_type": get("us_bank_account", "account_holder_type", "individual"),
            "account_type": get("us_bank_account", "account_type", "checking"),
            "bank_name": ACH_BANKS.get(routing, "TEST BANK"),
            "last4": account[-4:],
            "routing_number": routing,
        },
    }
    state.ach[method["id"]] = method
    state._ach_outcome[method["id"]] = ACH_ACCOUNTS.get(account)
    return method


def _ach_found(state: ProxyState, object_id: str, kind: str) -> dict:
    found = state.ach.get(object_id)
    if found is None or found["object"] != kind:
        raise _StripeError(404, f"No such {kind}: '{object_id}'", param="id", code="resource_missing")
    return found


def _ach_attach(state: ProxyState, method_id: str, customer: str) -> dict:
    method = _ach_found(state, method_id, "payment_method")
    method["customer"] = customer
    state._attached[method_id] = method
    return method


def _ach_local(state: ProxyState, method: str, path: str, params: dict) -> tuple[int, dict] | None:
    """The proxy's own answer for an ACH request, or None to forward it to localstripe."""
    parts = path.split("?")[0].strip("/").split("/")
    with state.lock:
        if parts[:2] == ["v1", "payment_methods"]:
            if method == "POST" and len(parts) == 2 and params.get("type") == "us_bank_account":
                return 200, _ach_method_create(state, params)
            if len(parts) >= 3 and parts[2] in state.ach:
                found = _ach_found(state, parts[2], "payment_method")
                if len(parts) == 4 and parts[3] == "attach":
                    return 200, _ach_attach(state, parts[2], params.get("customer", ""))
                if len(parts) == 4 and parts[3] == "detach":
                    found["customer"] = None
                    state._attached.pop(parts[2], None)
                return 200, found
            return None
        if parts[:2] == ["v1", "setup_intents"]:
            if method == "POST" and len(parts) == 2 and _is_ach(params):
                intent_id = _ach_id("seti")
                state.ach[intent_id] = {
                    "id": intent_id,
                    "object": "setup_intent",
                    "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
                    "customer": params.get("customer") or None,
                    "payment_method_types": ["us_bank_account"],
                    "usage": params.get("usage", "off_session"),
                    "status": "requires_payment_method",
                    "payment_method": None,
                    "mandate": None,
                    "created": int(time.time()),
                    "livemode": False,
                }
                return 200, state.ach[intent_id]
            if len(parts) < 3 or parts[2] not in state.ach:
                return None
            intent = _ach_found(state, parts[2], "setup_intent")
            if method == "POST":
                if params.get("payment_method_data[type]") == "us_bank_account":
                    intent["payment_method"] = _ach_method_create(state, params, "payment_method_data")["id"]
                elif params.get("payment_method"):
                    _ach_found(state, params["payment_method"], "payment_method")
                    intent["payment_method"] = params["payment_method"]
                if intent["payment_method"] and intent["status"] == "requires_payment_method":
                    intent["status"] = "requires_confirmation"
                if len(parts) == 4 and parts[3] == "confirm":
                    if not intent["payment_method"]:
                        raise _StripeError(400, "A payment method is required to confirm.", param="payment_method")
                    # Stripe's test accounts verify instantly (Financial Connections or the
                    # test routing number): the mandate is accepted on confirm.
                    if intent["customer"]:
                        _ach_attach(state, intent["payment_method"], intent["customer"])
                    intent["status"] = "succeeded"
                    intent["mandate"] = intent["mandate"] or _ach_id("mandate")
            return 200, intent
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2 and _is_ach(params):
                amount = params.get("amount", "")
                if not amount.isdigit() or int(amount) <= 0:
                    raise _StripeError(400, "Invalid positive integer", param="amount")
                if params.get("currency", "").lower() != "usd":
                    # As at Stripe: ACH Direct Debit debits US dollars only.
                    raise _StripeError(
                        400,
                        "The payment method `us_bank_account` does not support this currency; use usd.",
                        param="currency",
                        code="payment_intent_invalid_parameter",
                    )
                if params.get("payment_method"):
                    _ach_found(state, params["payment_method"], "payment_method")
                intent_id = _ach_id("pi")
                state.ach[intent_id] = {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": int(amount),
                    "amount_received": 0,
                    "currency": params.get("currency", "usd").lower(),
                    "customer": params.get("customer") or None,
                    "payment_method": params.get("payment_method") or None,
                    "payment_method_types": ["us_bank_account"],
                    "status": "requires_confirmation" if params.get("payment_method") else "requires_payment_method",
                    "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
                    "last_payment_error": None,
                    "latest_charge": None,
                    "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
                    "created": int(time.time()),
                    "livemode": False,
                }
                return 200, state.ach[intent_id]
            if len(parts) < 3 or parts[2] not in state.ach:
                return None
            intent = _ach_found(state, parts[2], "payment_intent")
            if method == "POST" and len(parts) == 4 and parts[3] == "confirm":
                if intent["status"] in ("requires_confirmation", "requires_payment_method"):
                    if params.get("payment_method"):
                        _ach_found(state, params["payment_method"], "payment_method")
                        intent["payment_method"] = params["payment_method"]
                    if not intent["payment_method"]:
                        raise _StripeError(400, "A payment method is required to confirm.", param="payment_method")
                    intent["status"] = "processing"
                    intent["last_payment_error"] = None
                    intent["latest_charge"] = _ach_id("py")
                    if state.ach_settle_seconds is not None:
                        timer = threading.Timer(state.ach_settle_seconds, state.ach_settle, args=(intent["id"],))
                        timer.daemon = True
                        timer.start()
                elif intent["status"] != "processing":
                    raise _StripeError(
                        400,
                        f"This PaymentIntent's status is {intent['status']}: it cannot be confirmed.",
                        code="payment_intent_unexpected_state",
                    )
            elif method == "POST" and len(parts) == 4 and parts[3] == "cancel":
                if intent["status"] in ("processing", "succeeded"):
                    raise _StripeError(
                        400, "This PaymentIntent cannot be canceled.", code="payment_intent_unexpected_state"
                    )
                intent["status"] = "canceled"
            return 200, intent
        if parts == ["v1", "refunds"] and method == "POST" and params.get("payment_intent") in state.ach:
            intent = _ach_found(state, params["payment_intent"], "payment_intent")
            if intent["status"] != "succeeded":
                raise _StripeError(
                    400, "This PaymentIntent has no successful charge to refund.", code="charge_not_refundable"
                )
            amount = int(params.get("amount") or intent["amount"])
            refund = {
                "id": _ach_id("pyr"),
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent["id"],
                "charge": intent["latest_charge"],
                "status": "pending",  # ACH refunds take days at Stripe too
                "created": int(time.time()),
            }
            state.ach[refund["id"]] = refund
            return 200, refund
        if parts[:1] == ["_devstripe"] and method == "POST" and len(parts) == 4 and parts[3] == "settle":
            _ach_found(state, parts[2], "payment_intent")
    if parts[:1] == ["_devstripe"] and method == "POST" and len(parts) == 4 and parts[3] == "settle":
        return 200, state.ach_settle(parts[2])
    return None


def _replies_prune(state: ProxyState) -> None:
    # Under state.lock. Dicts keep insertion order: the oldest answers come first.
    horizon = time.monotonic() - REPLAY_SECONDS
    while state._replies:
        key, (_, _, at) = next(iter(state._replies.items()))
        if at >= horizon:
            break
        del state._replies[key]


def stripe_proxy_server(upstream: str, *, port: int = 0) -> tuple[ThreadingHTTPServer, ProxyState]:
    """The proxy's server on 127.0.0.1:`port` (0: a free one), not yet serving, and its state."""
    if not upstream.startswith(("http://", "https://")):
        raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
    state = ProxyState(upstream=upstream.rstrip("/"))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: bytes | dict, headers: dict | None = None, *, kind="application/json"):
            data = json.dumps(body).encode() if isinstance(body, dict) else body
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            if self.headers.get("origin"):
                # Stripe.js calls the API from the shop's pages, as it does at Stripe.
                self.send_header("access-control-allow-origin", self.headers["origin"])
                self.send_header("access-control-allow-headers", "content-type, authorization")
                self.send_header("access-control-allow-methods", "GET, POST, DELETE, OPTIONS")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _forward(self, method: str, path: str, body: bytes | None):
            # The upstream is localstripe's http:// URL, checked by stripe_proxy_server.
            request = urllib.request.Request(state.upstream + path, data=body, method=method)  # noqa: S310
            for key in ("authorization", "content-type", "stripe-version"):
                if self.headers.get(key):
                    request.add_header(key, self.headers[key])
            try:
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                    return response.status, response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()

        def _handle(self, method: str):
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path
            if state.down:
                return self._answer(503, {"error": {"type": "api_error", "message": "Service unavailable"}})
            if method == "GET" and path.split("?")[0] == "/v1/account":
                return self._answer(200, ACCOUNT)
            if method == "GET" and path.startswith("/v1/payment_methods?"):
                query = dict(parse_qsl(path.split("?", 1)[1]))
                if query.get("type") not in (None, "card"):
                    found = [
                        m
                        for m in state._attached.values()
                        if m.get("customer") == query.get("customer") and m.get("type") == query["type"]
                    ]
                    return self._answer(
                        200, {"object": "list", "data": found, "has_more": False, "url": "/v1/payment_methods"}
                    )
            if method == "GET" and path.split("?")[0] == "/js.stripe.com/v3/":
                return self._stripe_js()
            if method == "GET" and path.split("?")[0] in (
                "/_devstripe/elements/iban",
                "/_devstripe/elements/us_bank_account",
            ):
                return self._answer(200, ELEMENT_FRAME, kind="text/html; charset=utf-8")
            key = self.headers.get("idempotency-key")
            if method == "POST" and key:
                with state.lock:
                    replay = state._replies.get((path, key))
                if replay is not None:
                    return self._answer(replay[0], replay[1], headers={"idempotent-replayed": "true"})
            params = _params(raw, self.headers.get("content-type") or "")
            if method == "POST" and path.startswith("/_config/webhooks/"):
                with state.lock:
                    state.webhooks[path.rsplit("/", 1)[1]] = (
                        params.get("url", ""),
                        params.get("secret", ""),
                        set(_listed(params, "events")),
                    )
            try:
                local = _ach_local(state, method, path, params)
            except _StripeError as error:
                local = (error.status, error.body)
            if local is not None:
                status, data = local[0], json.dumps(local[1]).encode()
                with state.lock:
                    state.requests[f"{method} {path.split('?')[0]}"] += 1
                    if method == "POST" and key and status < 500:
                        _replies_prune(state)
                        state._replies[(path, key)] = (status, data, time.monotonic())
                if method == "POST" and state.lose_answers > 0:
                    state.lose_answers -= 1
                    return self._answer(502, {"error": {"type": "api_error", "message": "Bad gateway"}})
                return self._answer(status, data)
            if raw[:1] == b"{":
                # Stripe.js (localstripe's and ours) posts JSON: passed on as it is.
                status, data = self._forward(method, path, raw)
                return self._answer(status, data)
            form = parse_qsl(raw.decode(), keep_blank_values=True) if raw else []
            if method == "POST" and path.endswith("/confirm"):
                form = [(k, v) for k, v in form if k != "off_session"]
            decline = None
            if method == "POST" and path == "/v1/payment_methods":
                number = dict(form).get("card[number]", "")
                decline = DECLINES.get(number)
                if decline:
                    form = [(k, LOCALSTRIPE_DECLINES_ON_CHARGE if k == "card[number]" else v) for k, v in form]
            body = urlencode(form).encode() if raw else None
            status, data = self._forward(method, path, body if method != "GET" else None)
            with state.lock:
                state.requests[f"{method} {path.split('?')[0]}"] += 1
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                if decline and status == 200:
                    state._declines[parsed["id"]] = decline
                if path.endswith("/attach") and status == 200 and parsed.get("type") != "card":
                    state._attached[parsed["id"]] = parsed
                _patch_intent(state, parsed)
                if status == 402 and path.startswith("/v1/payment_intents/") and path.endswith("/confirm"):
                    intent_id = path.split("/")[3]
                    _, intent = self._forward("GET", f"/v1/payment_intents/{intent_id}", None)
                    intent = _patch_intent(state, json.loads(intent))
                    error = parsed.setdefault("error", {})
                    error["type"] = "card_error"
                    error["payment_intent"] = intent
                    last = intent.get("last_payment_error") or {}
                    error["code"] = last.get("code", error.get("code"))
                    if last.get("decline_code"):
                        error["decline_code"] = last["decline_code"]
                data = json.dumps(parsed).encode()
            if method == "POST" and key and status < 500:
                with state.lock:
                    _replies_prune(state)
                    state._replies[(path, key)] = (status, data, time.monotonic())
            if method == "POST" and state.lose_answers > 0:
                state.lose_answers -= 1
                return self._answer(502, {"error": {"type": "api_error", "message": "Bad gateway"}})
            return self._answer(status, data)

        def _stripe_js(self):
            # localstripe's Stripe.js (loaded from here, so it calls the API through the proxy),
            # then what it lacks (STRIPE_JS_EXTENSION).
            status, upstream_js = self._forward("GET", "/js.stripe.com/v3/", None)
            if status != 200:
                return self._answer(502, b"/* localstripe's Stripe.js is not available */", kind="text/javascript")
            return self._answer(200, upstream_js + b"\n" + STRIPE_JS_EXTENSION, kind="text/javascript")

        def do_OPTIONS(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self._answer(204, b"")

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

        def do_DELETE(self):
            self._handle("DELETE")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server, state


@contextmanager
def stripe_proxy(upstream: str):
    """A proxy serving in a thread of this process for the block: its state (faults, counts)."""
    server, state = stripe_proxy_server(upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m config.devstripe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="localstripe's base URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--ach-settle-seconds",
        type=float,
        default=None,
        help="settle processing ACH debits after this many seconds (default: only when told to)",
    )
    args = parser.parse_args(argv)
    server, state = stripe_proxy_server(args.upstream, port=args.port)
    state.ach_settle_seconds = args.ach_settle_seconds
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
