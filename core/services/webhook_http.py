"""The HTTP client of outbound webhooks: short timeouts, no redirects, at most 1 KB of the answer
read, and no request to a private, loopback, link-local or otherwise non-public address unless
WEBHOOKS_ALLOW_PRIVATE_TARGETS is on (development and tests).

The check resolves the host and refuses if *any* of its addresses is not public, then connects to
the address it checked (the Host header and, for https, SNI and certificate check use the name), so
a DNS answer that changes between the check and the connection (rebinding) cannot reach inside.
urllib3 (the engine under requests) is used directly because it lets the connection target be the
checked address while TLS verifies the host name."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any

import urllib3
from django.conf import settings
from urllib3.util import Timeout, parse_url

from core.errors import DomainError

EXCERPT_BYTES = 1024
_POOLS_MAX = 256
# Kept-alive connections per target and process: one per sender thread (the outbox sends up to
# this many webhooks of a task at once); with fewer, the extra ones would be opened and dropped.
CONNECTIONS_PER_TARGET = 8


class TargetRefused(DomainError):
    """The URL may not be called: not http(s), unresolvable, or a non-public address."""

    code = "webhook_target_refused"


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    latency_ms: int
    excerpt: str
    error: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def target_check(url: str) -> None:
    """Whether `url` may receive webhooks, checked when an endpoint is saved: http(s) with a host
    and, unless private targets are allowed (development, tests), resolving to public addresses
    only. (Delivery checks again on every request: DNS answers change.)"""
    if settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        _parsed(url)
    else:
        target_resolve(url)


def _parsed(url: str) -> tuple[str, str, int]:
    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in ("http", "https") or not parsed.host:
        raise TargetRefused("the URL must be http:// or https:// with a host")
    return scheme, parsed.host.strip("[]"), parsed.port or (443 if scheme == "https" else 80)


def target_resolve(url: str) -> tuple[str, str, int, list[str]]:
    """(scheme, host, port, addresses) of a webhook URL, refusing what may not be called."""
    scheme, host, port = _parsed(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {host!r} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS:
        for text in addresses:
            if not _public(ipaddress.ip_address(text.split("%")[0])):
                raise TargetRefused(f"the host {host!r} resolves to {text}, which is not a public address")
    return scheme, host, port, addresses


_pools: OrderedDict[tuple[Any, ...], urllib3.HTTPConnectionPool] = OrderedDict()
_pools_lock = Lock()


def _pool(scheme: str, address: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
    key = (scheme, address, port, host)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is not None:
            _pools.move_to_end(key)
            return pool
        if scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                port,
                maxsize=CONNECTIONS_PER_TARGET,
                server_hostname=host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, maxsize=CONNECTIONS_PER_TARGET)
        _pools[key] = pool
        while len(_pools) > _POOLS_MAX:
            _, old = _pools.popitem(last=False)
            old.close()
        return pool


def webhook_post(url: str, *, body: bytes, headers: dict[str, str]) -> PostResult:
    """POST `body` to `url`. Never raises for network trouble (it is in `error`); raises
    TargetRefused when the URL may not be called at all."""
    scheme, host, port, addresses = target_resolve(url)
    parsed = parse_url(url)
    default_port = 443 if scheme == "https" else 80
    host_header = (f"[{host}]" if ":" in host else host) + (f":{port}" if port != default_port else "")
    timeout = Timeout(
        connect=settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS,
        read=settings.WEBHOOK_TIMEOUT_SECONDS,
        total=settings.WEBHOOK_TIMEOUT_SECONDS,
    )
    started = time.perf_counter()
    try:
        response = _pool(scheme, addresses[0], port, host).urlopen(
            "POST",
            parsed.request_uri,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            retries=False,
            timeout=timeout,
            preload_content=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        return PostResult(None, _ms(started), "", _error(exc))
    try:
        excerpt = response.read(EXCERPT_BYTES, decode_content=True)
        remaining = response.length_remaining
        if remaining is not None and remaining <= 64 * 1024:
            response.drain_conn()  # small rest: read it so the connection is reused
        else:
            response.close()  # an unbounded or large body is not read
    except urllib3.exceptions.HTTPError as exc:
        response.close()
        return PostResult(response.status, _ms(started), "", _error(exc))
    finally:
        response.release_conn()
    return PostResult(response.status, _ms(started), excerpt.decode("utf-8", "replace"), "")


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _error(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {reason}"[:500]
