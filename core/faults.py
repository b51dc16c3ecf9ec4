"""Fault injection for crash tests: `BILLING_FAULT=<point>:<n>` makes the process SIGKILL itself
the n-th time it reaches `<point>`. Inert (one dict lookup) when the variable is not set. The one
module every app's fault points go through (metering's drain, invoicing's run, the outbox)."""

from __future__ import annotations

import os
import signal
import threading

_spec = os.environ.get("BILLING_FAULT", "")
_point, _, _nth = _spec.partition(":")
_remaining = int(_nth or 1) if _point else 0
# Held through the kill: a point reached by threads at once (the outbox's sender threads) counts
# each hit once, and no thread gets past the n-th before the process is gone.
_lock = threading.Lock()


def fault_point(name: str) -> None:
    global _remaining
    if _remaining and name == _point:
        with _lock:
            _remaining -= 1
            if _remaining == 0:
                os.kill(os.getpid(), signal.SIGKILL)
