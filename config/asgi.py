"""ASGI entry point: HTTP through Django, websockets through Channels with the tenant resolved
from the Host header (Channels has no tenant support of its own; see portal.ws)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The web process borrows its database connections from a pool (config/settings.py, DB_POOL: a
# request's thread does not outlive it, so its own connection would not either). Only here: the
# worker, beat, drainer and management commands keep theirs. DB_POOL=0 in the environment wins.
# Set for this process's settings only: a process this one starts (a test's Celery worker, say)
# must not inherit it, as a worker on a pool stopped taking tasks.
_pool_default = "DB_POOL" not in os.environ
if _pool_default:
    os.environ["DB_POOL"] = "1"

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()
if _pool_default:
    del os.environ["DB_POOL"]

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dunning.lane import EntitlementLane  # noqa: E402
from metering.api.lane import IngestLane  # noqa: E402
from payments.lane import WebhookLane  # noqa: E402
from portal.ws import TenantAuthMiddleware, TenantMiddleware, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": IngestLane(WebhookLane(EntitlementLane(django_asgi_app))),
        "websocket": AllowedHostsOriginValidator(
            TenantMiddleware(TenantAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
