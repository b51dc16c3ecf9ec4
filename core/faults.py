"""Fault injection for crash tests, as metering.faults: `BILLING_FAULT=<point>:<n>` makes the
process SIGKILL itself the n-th time it reaches `<point>`; inert when the variable is not set.
(Core cannot import metering; issue 10 §1 makes this the one module and metering's a re-export.)"""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("BILLING_FAULT", "")
_point, _, _nth = _spec.partition(":")
_remaining = int(_nth or 1) if _point else 0


def fault_point(name: str) -> None:
    global _remaining
    if _remaining and name == _point:
        _remaining -= 1
        if _remaining == 0:
            os.kill(os.getpid(), signal.SIGKILL)
