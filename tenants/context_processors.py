from django.db import connection


def tenant(request):
    """The current tenant (for branding) on tenant hosts; nothing on the public host."""
    current = getattr(connection, "tenant", None)
    if current is None or current.schema_name == "public":
        return {"tenant": None}
    return {"tenant": current}
