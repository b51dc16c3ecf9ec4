from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

# Every key starts with it: authentication tells an API key from an OAuth2 token by it.
KEY_PREFIX = "bk_"


def apikey_digest(raw_key: str) -> str:
    """What is stored of a key (and looked up by): its SHA-256, see APIKey."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


class APIKeyScope(models.TextChoices):
    INGEST = "ingest", "Send usage events"
    READ = "read", "Read"
    WRITE = "write", "Write"


class APIKey(models.Model):
    """A tenant's machine credential. The secret is shown once at creation and stored only as a
    SHA-256 digest: keys carry 256 random bits, so a fast hash is as safe as a slow one here and
    keeps the ingestion path cheap (the practice of GitHub's and Stripe's tokens)."""

    name = models.CharField(max_length=100)
    # The first characters of the key (`bk_` + 8), shown in lists so a key can be recognised.
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=16, choices=APIKeyScope.choices))
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A key a customer made in the portal (issue 13 flow 9): it reads that one organization's
    # usage and nothing else (accounts.api.permissions refuses it everywhere else, and the usage
    # selectors see only this organization). Null: a tenant-wide key made by staff.
    organization = models.ForeignKey(
        "billing.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )

    class Meta:
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(condition=~models.Q(scopes=[]), name="accounts_apikey_has_scope"),
            # An organization's key only ever reads.
            models.CheckConstraint(
                condition=models.Q(organization__isnull=True) | models.Q(scopes=["read"]),
                name="accounts_apikey_organization_reads",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
