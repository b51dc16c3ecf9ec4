from django import template

from adminpanel.selectors import changes_text

register = template.Library()


@register.filter
def audit_changes(entry) -> str:
    return changes_text(entry)


@register.filter
def audit_actor(entry) -> str:
    """Who: the user's email as recorded, or "system" (billing runs, beat tasks), with the origin
    (an API key's name, an OAuth2 client) when the entry has one."""
    who = entry.actor_email or (entry.actor.email if entry.actor_id else "system")
    origin = (entry.additional_data or {}).get("origin") if isinstance(entry.additional_data, dict) else None
    return f"{who} ({origin})" if origin else who
