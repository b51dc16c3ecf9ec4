"""The Stripe adapter's HTTP client (payments.gateways.stripe._http_client): the environment's
proxies are read once, when the client is built, and honored (NO_PROXY included); a ~/.netrc never
replaces the API key. Against two bare local servers: the API and a forward proxy."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from payments.gateways.base import ChargeStatus
from payments.gateways.stripe import StripeGateway

SECRET_KEY = "sk_test_" + "h" * 24
INTENT = {"id": "pi_http1", "object": "payment_intent", "status": "processing", "amount": 1200, "currency": "eur"}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.seen: list[tuple[str, str]] = []  # (request target, Authorization)

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.seen.append((self.path, self.headers.get("Authorization", "")))
                body = json.dumps(INTENT).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def servers(monkeypatch, tmp_path):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    api, proxy = _Server(), _Server()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (api, proxy)]
    for thread in threads:
        thread.start()
    yield api, proxy
    for server in (api, proxy):
        server.shutdown()
        server.server_close()


def _gateway(api: _Server) -> StripeGateway:
    return StripeGateway(secret_key=SECRET_KEY, publishable_key="pk_test_h", api_base=api.url, timeout=5)


def test_the_environments_proxy_is_used(servers, monkeypatch):
    api, proxy = servers
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    result = _gateway(api).charge_get(charge_id="pi_http1")
    assert (result.id, result.status) == ("pi_http1", ChargeStatus.PROCESSING)
    assert proxy.seen == [(f"{api.url}/v1/payment_intents/pi_http1", f"Bearer {SECRET_KEY}")]
    assert api.seen == []


def test_no_proxy_is_honored(servers, monkeypatch):
    api, proxy = servers
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _gateway(api).charge_get(charge_id="pi_http1")
    assert api.seen == [("/v1/payment_intents/pi_http1", f"Bearer {SECRET_KEY}")]
    assert proxy.seen == []


def test_the_environment_is_read_when_the_client_is_built_not_per_call(servers, monkeypatch):
    api, proxy = servers
    gateway = _gateway(api)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    gateway.charge_get(charge_id="pi_http1")
    gateway.charge_get(charge_id="pi_http1")
    assert api.seen == [("/v1/payment_intents/pi_http1", f"Bearer {SECRET_KEY}")] * 2
    assert proxy.seen == []


def test_a_netrc_never_replaces_the_api_key(servers, tmp_path):
    api, _ = servers
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login someone password hunter2\n")
    (tmp_path / ".netrc").chmod(0o600)
    _gateway(api).charge_get(charge_id="pi_http1")
    assert api.seen == [("/v1/payment_intents/pi_http1", f"Bearer {SECRET_KEY}")]
