"""The payments benchmark's Stripe: a bare ASGI app (served by uvicorn) that speaks the part of
Stripe's PaymentIntent API the gateway code uses, fast enough not to be what is measured
(localstripe slows down past a few thousand objects).

- `POST /v1/payment_intents` (form-encoded, as the SDK sends): an intent `requires_confirmation`;
- `POST /v1/payment_intents/<id>/confirm`: a card intent `succeeded`, a debit one (`sepa_debit`,
  `us_bank_account`) `processing` (its webhook settles it); confirming an intent that is no longer
  `requires_confirmation` is Stripe's 400 `payment_intent_unexpected_state` and charges nothing;
- `GET /v1/payment_intents/<id>`;
- `Idempotency-Key` on every POST: the same key on the same path answers the first answer again
  and does nothing (Stripe keeps keys 24 h);
- `GET /stats`: {"intents", "charges", "double_charges" (invoices charged more than once),
  "replays"}; `GET /intents`: every confirmed intent (for the benchmark to sign their webhooks);
  `POST /reset` forgets everything.

Not a test double for correctness (config/devstripe.py in front of localstripe is):
only what a charge needs, answered from memory."""

from __future__ import annotations

import json
import time
from collections import Counter
from urllib.parse import parse_qsl

intents: dict[str, dict] = {}
replies: dict[tuple[str, str], tuple[int, bytes]] = {}
charges_by_invoice: Counter = Counter()
counter = {"n": 0, "replays": 0, "charges": 0}
DEBITS = ("sepa_debit", "us_bank_account")


def _error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"type": "invalid_request_error", "code": code, "message": message}}).encode()


def _ok(body: dict) -> tuple[int, bytes]:
    return 200, json.dumps(body).encode()


def _create(form: list[tuple[str, str]]) -> tuple[int, bytes]:
    fields = dict(form)
    counter["n"] += 1
    intent_id = f"pi_bench{counter['n']:08d}"
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": int(fields.get("amount", "0")),
        "currency": fields.get("currency", "usd"),
        "customer": fields.get("customer"),
        "payment_method": fields.get("payment_method"),
        "payment_method_types": [v for k, v in form if k.startswith("payment_method_types")],
        "metadata": {k[9:-1]: v for k, v in form if k.startswith("metadata[")},
        "status": "requires_confirmation",
        "latest_charge": None,
        "last_payment_error": None,
        "created": int(time.time()),
    }
    intents[intent_id] = intent
    return _ok(intent)


def _confirm(intent_id: str) -> tuple[int, bytes]:
    intent = intents.get(intent_id)
    if intent is None:
        return _error(404, "resource_missing", f"No such payment_intent: '{intent_id}'")
    if intent["status"] != "requires_confirmation":
        return _error(400, "payment_intent_unexpected_state", f"This PaymentIntent's status is {intent['status']}.")
    debit = any(t in DEBITS for t in intent["payment_method_types"])
    intent["status"] = "processing" if debit else "succeeded"
    intent["latest_charge"] = "ch_" + intent_id[3:]
    counter["charges"] += 1
    charges_by_invoice[intent["metadata"].get("invoice", intent_id)] += 1
    return _ok(intent)


def _route(method: str, path: str, form: list[tuple[str, str]]) -> tuple[int, bytes]:
    parts = path.strip("/").split("/")
    if method == "POST" and parts == ["v1", "payment_intents"]:
        return _create(form)
    if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "payment_intents"] and parts[3] == "confirm":
        return _confirm(parts[2])
    if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "payment_intents"]:
        intent = intents.get(parts[2])
        return _ok(intent) if intent else _error(404, "resource_missing", "No such payment_intent")
    if method == "GET" and parts == ["stats"]:
        doubles = sum(1 for n in charges_by_invoice.values() if n > 1)
        return _ok(
            {
                "intents": len(intents),
                "charges": counter["charges"],
                "double_charges": doubles,
                "replays": counter["replays"],
            }
        )
    if method == "GET" and parts == ["intents"]:
        return _ok({"data": [i for i in intents.values() if i["latest_charge"]]})
    if method == "POST" and parts == ["reset"]:
        intents.clear()
        replies.clear()
        charges_by_invoice.clear()
        counter.update(n=0, replays=0, charges=0)
        return _ok({})
    return _error(404, "resource_missing", f"Unrecognized request URL ({method}: {path}).")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    method, path = scope["method"], scope["path"]
    key = next((v.decode() for k, v in scope["headers"] if k == b"idempotency-key"), None)
    if method == "POST" and key and (path, key) in replies:
        counter["replays"] += 1
        status, body = replies[(path, key)]
    else:
        form = parse_qsl(b"".join(chunks).decode(), keep_blank_values=True)
        status, body = _route(method, path, form)
        if method == "POST" and key and status < 500:
            replies[(path, key)] = (status, body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})
