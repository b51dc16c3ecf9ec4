"""PayPal webhook verification, done locally, and the parse into a normalized event.

paypal-server-sdk has no webhook support, and PayPal's postback check
(`POST /v1/notifications/verify-webhook-signature`) costs an OAuth'd round trip per event. PayPal
documents the self-verification instead ("Integrate webhooks", developer.paypal.com): the
signature in PAYPAL-TRANSMISSION-SIG (base64, the algorithm named by PAYPAL-AUTH-ALGO,
SHA256withRSA) is over

    <PAYPAL-TRANSMISSION-ID>|<PAYPAL-TRANSMISSION-TIME>|<our webhook id>|<CRC32 of the raw body>

with the CRC32 as an unsigned decimal, checked against the public key of the X.509 certificate at
PAYPAL-CERT-URL. That URL comes from the request itself, so it is trusted only when it is https on
one of PayPal's API hosts (anyone can host a certificate that verifies their own signature); the
certificate is fetched without following redirects and cached by URL (PayPal rotates certificates
by publishing new URLs). The webhook id binds the event to this endpoint: an event meant for
another tenant's webhook (another id) does not verify here.

A transmission older or newer than five minutes is refused. Replays inside those five minutes are
the store's business: an event is stored once per PayPal event id, by a database constraint.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payments.paypal.failures import failure_from_processor
from payments.paypal.types import EventKind, Failure, FailureCode, WebhookEvent

# The hosts PayPal serves its message-verification certificates from (live and sandbox, the
# legacy api.* and current api-m.* names).
PAYPAL_CERT_HOSTS: frozenset[str] = frozenset(
    {"api.paypal.com", "api.sandbox.paypal.com", "api-m.paypal.com", "api-m.sandbox.paypal.com"}
)
TIMESTAMP_TOLERANCE = timedelta(minutes=5)
# PayPal sends SHA256withRSA; the header is compared case-insensitively because its spelling has
# varied between PayPal's samples.
SUPPORTED_ALGORITHM = "sha256withrsa"
_MAX_CERT_BYTES = 64 * 1024


class WebhookRejected(Exception):
    """The request is not a genuine, fresh PayPal event for this webhook. `reason` is a stable
    code for logs and tests; `retryable` is True only when PayPal's certificate could not be
    fetched (answer 5xx so PayPal retries, up to 25 times over 3 days)."""

    def __init__(self, reason: str, message: str = "", *, retryable: bool = False) -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason
        self.retryable = retryable


@dataclass
class CertificateSource:
    """Where signing certificates come from: only https URLs on `allowed_hosts`, verified against
    `ca_bundle` (None: the default trust store), cached by URL.

    The allow-list and the trust store are configuration (settings PAYPAL_WEBHOOK_CERT_HOSTS and
    PAYPAL_WEBHOOK_CERT_CA_BUNDLE): tests add the local fake's host and its CA, and the check
    itself is the same code that runs against PayPal.
    """

    allowed_hosts: frozenset[str] = PAYPAL_CERT_HOSTS
    ca_bundle: str | None = None
    timeout: float = 10.0
    max_cached: int = 32
    _cache: OrderedDict[str, x509.Certificate] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check_url(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as exc:
            raise WebhookRejected("cert_url_refused", "unparseable URL") from exc
        if parts.scheme != "https":
            raise WebhookRejected("cert_url_refused", "not https")
        # userinfo could make a URL read like PayPal's to a person while naming another host.
        if parts.username is not None or parts.password is not None:
            raise WebhookRejected("cert_url_refused", "credentials in URL")
        if host is None or host.lower() not in self.allowed_hosts:
            raise WebhookRejected("cert_url_refused", f"host {host!r} is not PayPal's")

    def certificate(self, url: str) -> x509.Certificate:
        self.check_url(url)
        with self._lock:
            cert = self._cache.get(url)
            if cert is not None:
                self._cache.move_to_end(url)
                return cert
        cert = self._fetch(url)
        with self._lock:
            self._cache[url] = cert
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return cert

    def _fetch(self, url: str) -> x509.Certificate:
        try:
            response = requests.get(
                url,
                timeout=self.timeout,
                verify=self.ca_bundle if self.ca_bundle else True,
                allow_redirects=False,
                stream=True,
            )
            with response:
                if response.status_code != 200:
                    raise WebhookRejected("cert_unavailable", f"HTTP {response.status_code}", retryable=True)
                data = response.raw.read(_MAX_CERT_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise WebhookRejected("cert_unavailable", type(exc).__name__, retryable=True) from exc
        if len(data) > _MAX_CERT_BYTES:
            raise WebhookRejected("cert_unavailable", "certificate too large")
        try:
            # PayPal serves the signing certificate first, then its chain.
            return x509.load_pem_x509_certificates(data)[0]
        except ValueError as exc:
            raise WebhookRejected("cert_unavailable", "not a PEM certificate") from exc


def _headers_lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise WebhookRejected("malformed_header", "PAYPAL-TRANSMISSION-TIME") from exc
    if parsed.tzinfo is None:
        raise WebhookRejected("malformed_header", "PAYPAL-TRANSMISSION-TIME has no zone")
    return parsed


def signed_message(*, transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    """The string PayPal signs. zlib.crc32 is unsigned in Python 3, as PayPal's decimal form is."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def webhook_verify(
    *,
    body: bytes,
    headers: Mapping[str, str],
    webhook_id: str,
    certificates: CertificateSource,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify a PayPal webhook request and return its decoded JSON body, or raise
    WebhookRejected. Nothing is fetched for a request whose certificate URL is not PayPal's."""
    h = _headers_lower(headers)
    names = ("transmission-id", "transmission-time", "transmission-sig", "cert-url", "auth-algo")
    missing = [n for n in names if not h.get(f"paypal-{n}")]
    if missing:
        raise WebhookRejected("missing_header", ", ".join(f"PAYPAL-{n.upper()}" for n in missing))
    if h["paypal-auth-algo"].lower() != SUPPORTED_ALGORITHM:
        raise WebhookRejected("unsupported_algorithm", h["paypal-auth-algo"][:40])

    sent = _parse_time(h["paypal-transmission-time"])
    now = now or datetime.now(UTC)
    if abs(now - sent) > TIMESTAMP_TOLERANCE:
        raise WebhookRejected("stale", f"transmitted {sent.isoformat()}")

    try:
        signature = base64.b64decode(h["paypal-transmission-sig"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRejected("bad_signature", "not base64") from exc

    cert = certificates.certificate(h["paypal-cert-url"])
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise WebhookRejected("bad_signature", "certificate outside its validity period")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRejected("bad_signature", "certificate key is not RSA")
    message = signed_message(
        transmission_id=h["paypal-transmission-id"],
        transmission_time=h["paypal-transmission-time"],
        webhook_id=webhook_id,
        body=body,
    )
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        # A wrong webhook id and a body changed in transit (its CRC32) land here too: both are
        # inside the signed message.
        raise WebhookRejected("bad_signature") from exc

    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected("malformed_body") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event.get("event_type"):
        raise WebhookRejected("malformed_body", "no event id or type")
    return event


_KINDS: dict[str, EventKind] = {
    "PAYMENT.CAPTURE.COMPLETED": EventKind.CHARGE_SUCCEEDED,
    "PAYMENT.CAPTURE.PENDING": EventKind.CHARGE_PENDING,
    "PAYMENT.CAPTURE.DECLINED": EventKind.CHARGE_FAILED,
    # A capture that was PENDING and then failed (e-check bounced, review refused).
    "PAYMENT.CAPTURE.DENIED": EventKind.CHARGE_FAILED,
    "PAYMENT.CAPTURE.REFUNDED": EventKind.CHARGE_REFUNDED,
    "VAULT.PAYMENT-TOKEN.CREATED": EventKind.METHOD_SAVED,
    "VAULT.PAYMENT-TOKEN.DELETED": EventKind.METHOD_REMOVED,
}


def _amount(resource: Mapping[str, Any]) -> tuple[Decimal | None, str | None]:
    amount = resource.get("amount")
    if not isinstance(amount, Mapping):
        return None, None
    try:
        return Decimal(str(amount.get("value"))), amount.get("currency_code")
    except InvalidOperation:
        return None, None


def _link(resource: Mapping[str, Any], rel: str) -> str | None:
    for link in resource.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == rel and isinstance(link.get("href"), str):
            return link["href"]
    return None


def _last_segment(url: str | None) -> str | None:
    return url.rstrip("/").rsplit("/", 1)[-1] if url else None


def event_parse(event: Mapping[str, Any]) -> WebhookEvent:
    """A verified event body as a WebhookEvent. Unknown types come back as EventKind.OTHER."""
    gateway_type = str(event.get("event_type"))
    kind = _KINDS.get(gateway_type, EventKind.OTHER)
    resource = event.get("resource")
    if not isinstance(resource, Mapping):
        resource = {}
    amount, currency = _amount(resource)
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    charge_id: str | None = None
    failure: Failure | None = None
    if kind in (EventKind.CHARGE_SUCCEEDED, EventKind.CHARGE_PENDING, EventKind.CHARGE_FAILED):
        charge_id = resource.get("id")
    elif kind is EventKind.CHARGE_REFUNDED:
        # The resource is the refund; its "up" link names the capture it refunds.
        charge_id = _last_segment(_link(resource, "up"))
    if kind is EventKind.CHARGE_FAILED:
        processor = resource.get("processor_response") or {}
        if processor.get("response_code"):
            failure = failure_from_processor(processor.get("response_code"))
        else:
            reason = (resource.get("status_details") or {}).get("reason") or gateway_type
            failure = Failure(FailureCode.HARD_DECLINE, str(reason))
    created = event.get("create_time")
    try:
        occurred_at = datetime.fromisoformat(created) if isinstance(created, str) else None
    except ValueError:
        occurred_at = None
    return WebhookEvent(
        id=str(event["id"]),
        gateway_type=gateway_type,
        kind=kind,
        occurred_at=occurred_at,
        resource_id=resource.get("id"),
        charge_id=charge_id,
        order_id=related.get("order_id"),
        amount=amount,
        currency=currency,
        resource_status=resource.get("status"),
        failure=failure,
        raw=dict(event),
    )


_SOURCES: dict[tuple[frozenset[str], str | None], CertificateSource] = {}
_SOURCES_LOCK = threading.Lock()


def certificate_source_from_settings() -> CertificateSource:
    """The certificate source configured by Django settings (PAYPAL_WEBHOOK_CERT_HOSTS, default
    PayPal's hosts; PAYPAL_WEBHOOK_CERT_CA_BUNDLE, default the system trust store), one per
    configuration per process so its cache is shared by every tenant's endpoint."""
    from django.conf import settings

    hosts: Iterable[str] | None = getattr(settings, "PAYPAL_WEBHOOK_CERT_HOSTS", None)
    allowed = frozenset(h.lower() for h in hosts) if hosts else PAYPAL_CERT_HOSTS
    bundle = getattr(settings, "PAYPAL_WEBHOOK_CERT_CA_BUNDLE", None) or None
    with _SOURCES_LOCK:
        source = _SOURCES.get((allowed, bundle))
        if source is None:
            source = _SOURCES[(allowed, bundle)] = CertificateSource(allowed_hosts=allowed, ca_bundle=bundle)
        return source
