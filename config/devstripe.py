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
  (the request reached Stripe, the answer was lost: the case idempotency keys exist for).

Requests are counted per path for the tests' "never a second charge" assertions. Remembered
answers for idempotency keys are kept for 24 hours, as Stripe keeps them (a long `make run` would
otherwise grow without bound)."""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode

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
    lock: threading.Lock = field(default_factory=threading.Lock)

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

        def _answer(self, status: int, body: bytes | dict, headers: dict | None = None):
            data = json.dumps(body).encode() if isinstance(body, dict) else body
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
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
            key = self.headers.get("idempotency-key")
            if method == "POST" and key:
                with state.lock:
                    replay = state._replies.get((path, key))
                if replay is not None:
                    return self._answer(replay[0], replay[1], headers={"idempotent-replayed": "true"})
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
    args = parser.parse_args(argv)
    server, _ = stripe_proxy_server(args.upstream, port=args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
