"""What the platform takes from request headers a client controls and then stores: the request id
(django-guid writes it into every audit entry's `cid`, a varchar(255)) and the forwarded client
address and port (django-auditlog writes them into `inet` and `integer` columns). Taken as sent,
`X-Request-ID` of 300 characters or `X-Forwarded-For: garbage` made every audited write answer 500.
A value that does not fit is dropped, never stored: the request gets a fresh id, the audit entry
the socket's address."""

from __future__ import annotations

import ipaddress

from auditlog.middleware import AuditlogMiddleware as _AuditlogMiddleware

from core.request_id import REQUEST_ID


class RequestIdMiddleware:
    """Before django-guid's middleware: a client's X-Request-ID is kept only if it is 1-128
    characters of `A-Z a-z 0-9 . _ : + / = -`; otherwise django-guid makes a new one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID")
        if given is not None and not REQUEST_ID.fullmatch(given):
            del request.META["HTTP_X_REQUEST_ID"]
        return self.get_response(request)


def _address(text: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((text or "").strip()))
    except ValueError:
        return None


class AuditlogMiddleware(_AuditlogMiddleware):
    """django-auditlog's, with the forwarded address and port stored only when they are an IP
    address and a port number (else the socket's address and no port)."""

    @staticmethod
    def _get_remote_addr(request):
        forwarded = _AuditlogMiddleware._get_remote_addr(request)
        if forwarded is None:  # AUDITLOG_DISABLE_REMOTE_ADDR, or no address at all
            return None
        return _address(forwarded) or _address(request.META.get("REMOTE_ADDR"))

    @staticmethod
    def _get_remote_port(request):
        port = _AuditlogMiddleware._get_remote_port(request)
        return port if port is not None and 0 < port <= 65535 else None
