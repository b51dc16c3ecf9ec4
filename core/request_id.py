"""The request ids a client may choose for its own requests (`X-Request-ID`: UUIDs, ULIDs, trace
ids, "req-42"). Here, at the floor, because both config's middleware (which drops any other value
before django-guid stores it) and the ASGI fast lanes of the apps above need the same rule."""

from __future__ import annotations

import re

REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
