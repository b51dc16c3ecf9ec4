"""A local fake of PayPal's REST API for tests and the demo: http.server in threads on loopback.

No offline PayPal server exists on any registry (STACK-NOTES), so this one speaks just what the
platform uses, in PayPal's shapes, and the adapter reaches it by base URL alone:

- OAuth2 client credentials: POST /v1/oauth2/token (Basic auth) → bearer token, required after.
- Vault v3: setup tokens (PAYER_ACTION_REQUIRED with an approve link served here as a small HTML
  page, like PayPal's own approval), payment tokens from an approved setup token, get, delete.
- Orders v2: create with `payment_source.paypal.vault_id` and intent CAPTURE → captured in the same
  call (PayPal-Request-Id required); create without a saved token → payer approval, then capture.
- Payments v2: get capture, refund (full or partial) and get refund.
- PayPal-Request-Id honoured on every POST: the same id on the same path answers the first
  response again and does nothing new.
- Signed webhooks, as PayPal signs them (RSA-SHA256 over transmission id|time|webhook id|CRC32 of
  the body) with a certificate generated at start, served over https (its own small CA, whose
  file `ca_bundle` names) at `cert_url`; posted to `webhook_url` when one is set.

Outcomes are chosen by magic amounts and by the payer's e-mail at approval; see MAGIC_AMOUNTS,
MAGIC_PAYERS and docs/payments-paypal.md. Test controls: `fail_next`, `lose_next_response`,
`approve_setup_token`, `approve_order`, `settle_capture`, `sign`, `event_body`.

`python -m tests.support.paypal_fake --port N` runs one as its own process (config.embedded does,
for `make run` and the tests, and exports its URL as PAYPAL_API_BASE).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import ipaddress
import json
import queue
import secrets
import ssl
import tempfile
import threading
import urllib.request
import uuid
import zlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# Amount (exact decimal string of purchase_units[0].amount.value) → what PayPal answers.
MAGIC_AMOUNTS: dict[str, tuple[str, str]] = {
    "9.05": ("issue", "INSTRUMENT_DECLINED"),  # 422 → soft_decline
    "9.06": ("issue", "TRANSACTION_REFUSED"),  # 422 → hard_decline
    "9.07": ("issue", "PAYER_ACTION_REQUIRED"),  # 422 → authentication_required
    "9.20": ("processor", "5120"),  # capture DECLINED, INSUFFICIENT_FUNDS
    "9.40": ("processor", "5400"),  # capture DECLINED, EXPIRED_CARD
    "9.50": ("processor", "9500"),  # capture DECLINED, SUSPECTED_FRAUD → hard_decline
    "9.51": ("processor", "9100"),  # capture DECLINED, DECLINED_PLEASE_RETRY → soft_decline
    "9.80": ("pending", "PENDING_REVIEW"),  # capture PENDING until settle_capture()
    "9.90": ("http", "500"),  # INTERNAL_SERVER_ERROR → gateway_down
    "9.91": ("http", "503"),  # SERVICE_UNAVAILABLE → gateway_down
}
# Local part of the payer e-mail given at approval → what every charge of that token answers.
MAGIC_PAYERS: dict[str, tuple[str, str]] = {
    "decline": ("issue", "TRANSACTION_REFUSED"),
    "soft-decline": ("issue", "INSTRUMENT_DECLINED"),
    "insufficient": ("processor", "5120"),
}
_ZERO_DECIMAL = {"HUF", "JPY", "TWD"}
_PROCESSOR_NAMES = {"5120": "INSUFFICIENT_FUNDS", "5400": "EXPIRED_CARD", "9500": "SUSPECTED_FRAUD", "9100": "RETRY"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(prefix: str = "") -> str:
    return prefix + secrets.token_hex(8).upper()


class _Reply(Exception):
    def __init__(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def _error(status: int, name: str, issue: str | None = None, message: str = "") -> _Reply:
    body: dict[str, Any] = {"name": name, "message": message or name.replace("_", " ").capitalize(), "debug_id": _id()}
    if issue:
        body["details"] = [{"issue": issue, "description": issue.replace("_", " ").lower()}]
    return _Reply(status, body)


def _self_signed(common_name: str, *, key: rsa.RSAPrivateKey, issuer_key=None, issuer_name=None, ca=False, sans=()):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@dataclass
class Delivery:
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None


@dataclass
class PayPalFake:
    client_id: str = "fake-client-id"
    client_secret: str = "fake-client-secret"
    webhook_id: str = "WHFAKE0000000001"
    webhook_url: str | None = None

    port: int = 0  # of the API (http); 0: a free one. The certificate's https port is always free.
    base_url: str = ""
    cert_url: str = ""
    cert_host: str = "localhost"
    ca_bundle: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    setup_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self._tokens: set[str] = set()
        self._idempotent: dict[tuple[str, str, str], tuple[int, dict[str, Any] | None]] = {}
        self._fail: list[int] = []
        self._lose = 0
        self._outbox: queue.Queue[tuple[str, dict[str, str], bytes] | None] = queue.Queue()
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_cert = _self_signed("messageverificationcerts.paypal.fake", key=self._signing_key)
        self._cert_name = "CERT-" + uuid.uuid4().hex[:24]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> PayPalFake:
        self._dir = tempfile.TemporaryDirectory(prefix="paypal-fake-")
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca = _self_signed("PayPal fake test CA", key=ca_key, ca=True)
        tls_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tls = _self_signed(
            self.cert_host,
            key=tls_key,
            issuer_key=ca_key,
            issuer_name=ca.subject,
            sans=(x509.DNSName(self.cert_host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
        )
        directory = Path(self._dir.name)
        self.ca_bundle = str(directory / "ca.pem")
        Path(self.ca_bundle).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (directory / "tls.pem").write_bytes(
            tls.public_bytes(serialization.Encoding.PEM)
            + tls_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        handler = self._handler()
        self._http = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._https = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "tls.pem")
        self._https.socket = context.wrap_socket(self._https.socket, server_side=True)
        for server in (self._http, self._https):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.cert_url = (
            f"https://{self.cert_host}:{self._https.server_address[1]}/v1/notifications/certs/{self._cert_name}"
        )
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._sender.start()
        return self

    def stop(self) -> None:
        self._outbox.put(None)
        self._sender.join(timeout=5)
        for server in (self._http, self._https):
            server.shutdown()
            server.server_close()
        self._dir.cleanup()

    def __enter__(self) -> PayPalFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls ---------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 503) -> None:
        """The next `count` API requests answer `status` without doing anything (PayPal down)."""
        with self.lock:
            self._fail.extend([status] * count)

    def lose_next_response(self) -> None:
        """The next API request is processed, then the connection is closed without an answer:
        the client cannot know whether PayPal acted (a crash or timeout after the request)."""
        with self.lock:
            self._lose += 1

    def approve_setup_token(self, setup_token_id: str, *, email: str = "payer@example.com") -> None:
        with self.lock:
            token = self.setup_tokens[setup_token_id]
            token["status"] = "APPROVED"
            token["payer_email"] = email

    def approve_order(self, order_id: str) -> None:
        with self.lock:
            self.orders[order_id]["status"] = "APPROVED"

    def settle_capture(self, capture_id: str, *, completed: bool = True) -> None:
        """A PENDING capture completes (PAYMENT.CAPTURE.COMPLETED) or is denied (.DENIED)."""
        with self.lock:
            capture = self.captures[capture_id]
            capture["status"] = "COMPLETED" if completed else "DECLINED"
            capture.pop("status_details", None)
            capture["update_time"] = _now()
            self._emit("PAYMENT.CAPTURE.COMPLETED" if completed else "PAYMENT.CAPTURE.DENIED", "capture", capture)

    def capture_count(self) -> int:
        with self.lock:
            return len(self.captures)

    # -- webhooks --------------------------------------------------------------------------------

    def event_body(self, event_type: str, resource_type: str, resource: dict[str, Any]) -> bytes:
        event = {
            "id": _id("WH-"),
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": event_type.replace(".", " ").lower(),
            "resource": resource,
            "links": [],
        }
        return json.dumps(event).encode()

    def sign(
        self,
        body: bytes,
        *,
        webhook_id: str | None = None,
        transmission_time: str | None = None,
        cert_url: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> dict[str, str]:
        """The headers PayPal sends with `body`, signed for `webhook_id` (default: this fake's)."""
        transmission_id = str(uuid.uuid4())
        transmission_time = transmission_time or _now()
        message = f"{transmission_id}|{transmission_time}|{webhook_id or self.webhook_id}|{zlib.crc32(body)}"
        signature = (key or self._signing_key).sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
        return {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
            "PAYPAL-CERT-URL": cert_url or self.cert_url,
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }

    def _emit(self, event_type: str, resource_type: str, resource: dict[str, Any]) -> None:
        if not self.webhook_url:
            return
        body = self.event_body(event_type, resource_type, json.loads(json.dumps(resource)))
        self._outbox.put((self.webhook_url, self.sign(body), body))

    def _send_loop(self) -> None:
        while (item := self._outbox.get()) is not None:
            url, headers, body = item
            status: int | None
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = None
            with self.lock:
                self.deliveries.append(Delivery(url, headers, body, status))

    # -- HTTP ------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Paypal-Debug-Id", _id())
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _send_html(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self, url: str) -> None:
                self.send_response(303)
                self.send_header("Location", url)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _dispatch(self, method: str) -> None:
                path = urlsplit(self.path).path
                raw = self._body() if method in ("POST", "PATCH") else b""
                with fake.lock:
                    fake.requests.append((method, path))
                if path.startswith("/v1/notifications/certs/"):
                    return self._cert(path)
                if path.startswith(("/agreements/approve", "/checkoutnow")):
                    return self._approval_page(method, raw)
                lose = False
                try:
                    with fake.lock:
                        if fake._fail:
                            status = fake._fail.pop(0)
                            raise _error(status, "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_SERVER_ERROR")
                        if fake._lose:
                            fake._lose -= 1
                            lose = True
                        reply = fake._api(method, path, dict(self.headers.items()), raw)
                except _Reply as exc:
                    reply = exc
                if lose:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                return self._send(reply.status, reply.body, reply.headers)

            def _cert(self, path: str) -> None:
                if path.rsplit("/", 1)[-1] != fake._cert_name:
                    return self._send(404, {"name": "RESOURCE_NOT_FOUND"})
                data = fake.signing_cert.public_bytes(serialization.Encoding.PEM)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None

            def _approval_page(self, method: str, raw: bytes) -> None:
                query = parse_qs(urlsplit(self.path).query)
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()} if method == "POST" else {}
                token = (query.get("approval_session_id") or query.get("token") or [form.get("token", "")])[0]
                with fake.lock:
                    setup = fake.setup_tokens.get(token)
                    order = fake.orders.get(token)
                    if setup is None and order is None:
                        return self._send_html(404, "<p>Unknown token</p>")
                    context = (setup or order)["_context"]
                    if method == "GET":
                        page = (
                            "<!doctype html><title>PayPal (fake)</title><h1>Log in to PayPal (fake)</h1>"
                            f'<form method="post"><input type="hidden" name="token" value="{html.escape(token)}">'
                            '<label>Email <input name="email" value="payer@example.com"></label>'
                            '<button name="action" value="approve">Agree and Continue</button>'
                            '<button name="action" value="cancel">Cancel and return</button></form>'
                        )
                        return self._send_html(200, page)
                    if form.get("action") != "approve":
                        return self._redirect(context.get("cancel_url") or "/")
                    if setup is not None:
                        fake.approve_setup_token(token, email=form.get("email") or "payer@example.com")
                        params = {"approval_token_id": token, "approval_session_id": token}
                    else:
                        fake.approve_order(token)
                        params = {"token": token, "PayerID": _id("PAYER")}
                return self._redirect(f"{context.get('return_url')}?{urlencode(params)}")

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

        return Handler

    # -- the API (called with the lock held) -----------------------------------------------------

    def _api(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Reply:
        h = {k.lower(): v for k, v in headers.items()}
        if path == "/v1/oauth2/token" and method == "POST":
            return self._oauth(h, raw)
        auth = h.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
            raise _error(401, "AUTHENTICATION_FAILURE", message="Authentication failed due to invalid credentials.")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise _error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON") from None
        request_id = h.get("paypal-request-id")
        if method == "POST" and request_id:
            key = (method, path, request_id)
            if key in self._idempotent:
                status, stored = self._idempotent[key]
                return _Reply(200 if status == 201 else status, stored)
            try:
                reply = self._route(method, path, body, request_id)
            except _Reply as exc:
                reply = exc
            if reply.status < 500:
                self._idempotent[key] = (reply.status, reply.body)
            return reply
        return self._route(method, path, body, request_id)

    def _oauth(self, h: dict[str, str], raw: bytes) -> _Reply:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        form = parse_qs(raw.decode())
        if h.get("authorization") != f"Basic {expected}":
            raise _Reply(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        if form.get("grant_type") != ["client_credentials"]:
            raise _Reply(400, {"error": "unsupported_grant_type", "error_description": "Grant type is not supported"})
        token = "A21" + secrets.token_urlsafe(24)
        self._tokens.add(token)
        return _Reply(
            200,
            {
                "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/vault/payment-tokens/readwrite",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-FAKE",
                "expires_in": 32400,
                "nonce": _now() + secrets.token_hex(8),
            },
        )

    def _route(self, method: str, path: str, body: dict[str, Any], request_id: str | None) -> _Reply:
        parts = path.strip("/").split("/")
        match (method, parts):
            case ("POST", ["v3", "vault", "setup-tokens"]):
                return self._setup_token_create(body)
            case ("GET", ["v3", "vault", "setup-tokens", token_id]):
                return _Reply(200, self._public(self._find(self.setup_tokens, token_id)))
            case ("POST", ["v3", "vault", "payment-tokens"]):
                return self._payment_token_create(body)
            case ("GET", ["v3", "vault", "payment-tokens", token_id]):
                return _Reply(200, self._public(self._find(self.payment_tokens, token_id)))
            case ("DELETE", ["v3", "vault", "payment-tokens", token_id]):
                token = self._find(self.payment_tokens, token_id)
                token["_deleted"] = True
                self._emit("VAULT.PAYMENT-TOKEN.DELETED", "payment_token", self._public(token))
                return _Reply(204, None)
            case ("POST", ["v2", "checkout", "orders"]):
                return self._order_create(body, request_id)
            case ("GET", ["v2", "checkout", "orders", order_id]):
                return _Reply(200, self._public(self._find(self.orders, order_id)))
            case ("POST", ["v2", "checkout", "orders", order_id, "capture"]):
                return self._order_capture(order_id)
            case ("GET", ["v2", "payments", "captures", capture_id]):
                return _Reply(200, self._find(self.captures, capture_id))
            case ("POST", ["v2", "payments", "captures", capture_id, "refund"]):
                return self._refund(capture_id, body)
            case ("GET", ["v2", "payments", "refunds", refund_id]):
                return _Reply(200, self._public(self._find(self.refunds, refund_id)))
        raise _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")

    @staticmethod
    def _find(table: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
        if key not in table or table[key].get("_deleted"):
            raise _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "The specified resource does not exist.")
        return table[key]

    @staticmethod
    def _public(resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if not k.startswith("_")}

    def _setup_token_create(self, body: dict[str, Any]) -> _Reply:
        paypal = (body.get("payment_source") or {}).get("paypal")
        if not isinstance(paypal, dict):
            raise _error(422, "UNPROCESSABLE_ENTITY", "PAYMENT_SOURCE_NOT_SUPPORTED")
        context = paypal.get("experience_context") or {}
        if not context.get("return_url") or not context.get("cancel_url"):
            raise _error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "return_url and cancel_url")
        customer = {k: v for k, v in (body.get("customer") or {}).items() if k in ("id", "merchant_customer_id")}
        customer.setdefault("id", _id("CUST"))
        token_id = _id("ST")
        approve = f"{self.base_url}/agreements/approve?approval_session_id={token_id}"
        token = {
            "id": token_id,
            "customer": customer,
            "status": "PAYER_ACTION_REQUIRED",
            "payment_source": {"paypal": {"description": paypal.get("description", ""), "usage_type": "MERCHANT"}},
            "links": [
                {"href": approve, "rel": "approve", "method": "GET"},
                {"href": f"{self.base_url}/v3/vault/setup-tokens/{token_id}", "rel": "self", "method": "GET"},
                {"href": f"{self.base_url}/v3/vault/payment-tokens", "rel": "confirm", "method": "POST"},
            ],
            "_context": context,
        }
        self.setup_tokens[token_id] = token
        return _Reply(201, self._public(token))

    def _payment_token_create(self, body: dict[str, Any]) -> _Reply:
        source = (body.get("payment_source") or {}).get("token") or {}
        if source.get("type") != "SETUP_TOKEN":
            raise _error(422, "UNPROCESSABLE_ENTITY", "PAYMENT_SOURCE_NOT_SUPPORTED")
        setup = self._find(self.setup_tokens, source.get("id", ""))
        if setup.get("_payment_token"):
            return _Reply(200, self._public(self.payment_tokens[setup["_payment_token"]]))
        if setup["status"] != "APPROVED":
            raise _error(422, "UNPROCESSABLE_ENTITY", "SETUP_TOKEN_NOT_APPROVED", "The payer has not approved.")
        token_id = _id("PT")
        email = setup["payer_email"]
        token = {
            "id": token_id,
            "customer": setup["customer"],
            "payment_source": {"paypal": {"email_address": email, "payer_id": _id("PAYER"), "usage_type": "MERCHANT"}},
            "links": [{"href": f"{self.base_url}/v3/vault/payment-tokens/{token_id}", "rel": "self", "method": "GET"}],
            "_behaviour": MAGIC_PAYERS.get(email.split("@", 1)[0].lower()),
        }
        self.payment_tokens[token_id] = token
        setup["_payment_token"] = token_id
        setup["status"] = "VAULTED"
        self._emit("VAULT.PAYMENT-TOKEN.CREATED", "payment_token", self._public(token))
        return _Reply(201, self._public(token))

    @staticmethod
    def _amount(unit: dict[str, Any]) -> tuple[str, str]:
        amount = unit.get("amount") or {}
        value, currency = str(amount.get("value", "")), str(amount.get("currency_code", ""))
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise _error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "amount.value") from None
        places = 0 if currency in _ZERO_DECIMAL else 2
        if len(currency) != 3 or number <= 0 or -number.as_tuple().exponent > places:  # type: ignore[operator]
            raise _error(422, "UNPROCESSABLE_ENTITY", "DECIMAL_PRECISION" if number > 0 else "AMOUNT_MISMATCH")
        return value, currency

    def _order_create(self, body: dict[str, Any], request_id: str | None) -> _Reply:
        if body.get("intent") != "CAPTURE":
            raise _error(422, "UNPROCESSABLE_ENTITY", "UNSUPPORTED_INTENT", "The fake only captures.")
        units = body.get("purchase_units") or []
        if len(units) != 1:
            raise _error(400, "INVALID_REQUEST", "INVALID_ARRAY_MAX_ITEMS", "one purchase unit")
        value, currency = self._amount(units[0])
        paypal = (body.get("payment_source") or {}).get("paypal") or {}
        order_id = _id("O")
        order: dict[str, Any] = {
            "id": order_id,
            "intent": "CAPTURE",
            "create_time": _now(),
            "purchase_units": [
                {
                    "reference_id": "default",
                    "amount": {"currency_code": currency, "value": value},
                    **{k: units[0][k] for k in ("invoice_id", "custom_id", "description") if k in units[0]},
                }
            ],
            "links": [{"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"}],
        }
        vault_id = paypal.get("vault_id")
        if not vault_id:
            context = paypal.get("experience_context") or {}
            order["status"] = "PAYER_ACTION_REQUIRED"
            order["_context"] = context
            order["links"].append(
                {"href": f"{self.base_url}/checkoutnow?token={order_id}", "rel": "payer-action", "method": "GET"}
            )
            self.orders[order_id] = order
            return _Reply(200, self._public(order))
        if not request_id:
            raise _error(400, "INVALID_REQUEST", "PAYPAL_REQUEST_ID_REQUIRED")
        token = self.payment_tokens.get(vault_id)
        if token is None:
            raise _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "The payment token does not exist.")
        if token.get("_deleted"):
            raise _error(422, "UNPROCESSABLE_ENTITY", "AGREEMENT_ALREADY_CANCELLED")
        behaviour = MAGIC_AMOUNTS.get(value) or token.get("_behaviour")
        if behaviour and behaviour[0] == "issue":
            raise _error(422, "UNPROCESSABLE_ENTITY", behaviour[1])
        if behaviour and behaviour[0] == "http":
            status = int(behaviour[1])
            raise _error(status, "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_SERVER_ERROR")
        order["payment_source"] = {"paypal": {"email_address": token["payment_source"]["paypal"]["email_address"]}}
        self.orders[order_id] = order
        self._capture(order, behaviour)
        return _Reply(201, self._public(order))

    def _order_capture(self, order_id: str) -> _Reply:
        order = self._find(self.orders, order_id)
        if order["status"] == "COMPLETED":
            raise _error(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED")
        if order["status"] != "APPROVED":
            raise _error(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")
        self._capture(order, MAGIC_AMOUNTS.get(order["purchase_units"][0]["amount"]["value"]))
        return _Reply(201, self._public(order))

    def _capture(self, order: dict[str, Any], behaviour: tuple[str, str] | None) -> None:
        unit = order["purchase_units"][0]
        capture_id = _id("C")
        capture_url = f"{self.base_url}/v2/payments/captures/{capture_id}"
        capture: dict[str, Any] = {
            "id": capture_id,
            "status": "COMPLETED",
            "amount": dict(unit["amount"]),
            "final_capture": True,
            "create_time": _now(),
            "update_time": _now(),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
            "links": [
                {"href": capture_url, "rel": "self", "method": "GET"},
                {"href": f"{capture_url}/refund", "rel": "refund", "method": "POST"},
                {"href": f"{self.base_url}/v2/checkout/orders/{order['id']}", "rel": "up", "method": "GET"},
            ],
            **{k: unit[k] for k in ("invoice_id", "custom_id") if k in unit},
        }
        event = "PAYMENT.CAPTURE.COMPLETED"
        if behaviour and behaviour[0] == "processor":
            capture["status"] = "DECLINED"
            capture["processor_response"] = {"response_code": behaviour[1]}
            event = "PAYMENT.CAPTURE.DECLINED"
        elif behaviour and behaviour[0] == "pending":
            capture["status"] = "PENDING"
            capture["status_details"] = {"reason": behaviour[1]}
            event = "PAYMENT.CAPTURE.PENDING"
        self.captures[capture_id] = capture
        order["status"] = "COMPLETED"
        order["update_time"] = _now()
        # The order embeds the capture as it was (PayPal's order view has no supplementary_data).
        unit["payments"] = {"captures": [{k: v for k, v in capture.items() if k != "supplementary_data"}]}
        self._emit(event, "capture", capture)

    def _refund(self, capture_id: str, body: dict[str, Any]) -> _Reply:
        capture = self._find(self.captures, capture_id)
        if capture["status"] == "REFUNDED":
            raise _error(422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED")
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            raise _error(422, "UNPROCESSABLE_ENTITY", "INVALID_RESOURCE_ID", "The capture cannot be refunded.")
        currency = capture["amount"]["currency_code"]
        captured = Decimal(capture["amount"]["value"])
        refunded = sum(
            (Decimal(r["amount"]["value"]) for r in self.refunds.values() if r["_capture_id"] == capture_id),
            Decimal(0),
        )
        if body.get("amount"):
            value, refund_currency = self._amount(body)
            if refund_currency != currency:
                raise _error(422, "UNPROCESSABLE_ENTITY", "REFUND_CURRENCY_MISMATCH")
            amount = Decimal(value)
        else:
            amount = captured - refunded
        if amount > captured - refunded:
            raise _error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        refund_id = _id("R")
        places = Decimal(1) if currency in _ZERO_DECIMAL else Decimal("0.01")
        refund = {
            "id": refund_id,
            "status": "COMPLETED",
            "amount": {"currency_code": currency, "value": str(amount.quantize(places))},
            "create_time": _now(),
            "update_time": _now(),
            "links": [
                {"href": f"{self.base_url}/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
                {"href": f"{self.base_url}/v2/payments/captures/{capture_id}", "rel": "up", "method": "GET"},
            ],
            **({"note_to_payer": body["note_to_payer"]} if body.get("note_to_payer") else {}),
            "_capture_id": capture_id,
        }
        self.refunds[refund_id] = refund
        capture["status"] = "REFUNDED" if refunded + amount == captured else "PARTIALLY_REFUNDED"
        capture["update_time"] = _now()
        self._emit("PAYMENT.CAPTURE.REFUNDED", "refund", self._public(refund))
        return _Reply(201, self._public(refund))


def main(argv: list[str] | None = None) -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m tests.support.paypal_fake", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the API's port on 127.0.0.1")
    args = parser.parse_args(argv)
    fake = PayPalFake(port=args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
