from django.db import connection


def tenant(request):
    """The current tenant (for branding) on tenant hosts; nothing on the public host. Taken from the
    request (set by the tenant middleware): under ASGI Django renders error pages in another
    thread, whose database connection was never switched to the tenant."""
    current = getattr(request, "tenant", None) or getattr(connection, "tenant", None)
    if current is None or current.schema_name == "public":
        return {"tenant": None}
    return {"tenant": current}
