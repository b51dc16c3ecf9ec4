from __future__ import annotations

from django.conf import settings
from django.db import models


class StaffNote(models.Model):
    """A staff member's note on an organization (a call, a promise, a context for the next person
    who opens the page). Kept, never edited: the page shows them newest first with their author."""

    organization = models.ForeignKey("billing.Organization", on_delete=models.CASCADE, related_name="staff_notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    body = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Note {self.pk} on {self.organization_id}"
