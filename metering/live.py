"""Names of the channel-layer groups that carry live usage to the portal."""

from __future__ import annotations

import hashlib


def usage_group_name(*, schema_name: str, external_id: str) -> str:
    """One group per tenant schema and organization. The schema is part of the name so nothing
    crosses tenants; the external id is hashed because group names allow only [A-Za-z0-9._-]."""
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:32]
    return f"usage.{schema_name}.{digest}"
