"""The benchmark's webhook receiver: a bare ASGI app (served by uvicorn) that answers every POST
204 and remembers when each `webhook-id` first arrived (wall clock, for commit → delivery).
`GET /stats` returns {"arrivals": {id: unix time}, "posts": n}; `POST /reset` forgets all."""

from __future__ import annotations

import json
import time

arrivals: dict[str, float] = {}
counter = {"posts": 0}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while True:  # read the whole body
        message = await receive()
        if not message.get("more_body"):
            break
    path, method = scope["path"], scope["method"]
    body = b""
    if method == "POST" and path == "/reset":
        arrivals.clear()
        counter["posts"] = 0
    elif method == "POST":
        counter["posts"] += 1
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                arrivals.setdefault(value.decode(), time.time())
                break
    elif path == "/stats":
        body = json.dumps({"arrivals": arrivals, "posts": counter["posts"]}).encode()
    status = 200 if body else 204
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
