"""Encryption of secrets at rest (webhook signing secrets now, gateway credentials next) with
`cryptography`'s Fernet (AES-128-CBC + HMAC-SHA256, authenticated, timestamped tokens).

Keys come from the setting FIELD_ENCRYPTION_KEYS (environment, comma-separated Fernet keys). The
first key encrypts; every key decrypts, so a key is rotated by putting the new one first, running
`field_encryption_rotate` (re-encrypts the stored values), then dropping the old key. Outside
production the default is one key derived from SECRET_KEY, so development needs no setup."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ["InvalidToken", "decrypt", "derived_key", "encrypt", "reencrypt"]


def derived_key(secret: str) -> str:
    """A Fernet key derived from a text secret (SHA-256 of a labelled input: never SECRET_KEY's own bytes)."""
    digest = hashlib.sha256(b"billing.core.crypto.v1:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ValueError("FIELD_ENCRYPTION_KEYS is empty")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS)
    if not keys and not settings.PRODUCTION:
        keys = (derived_key(settings.SECRET_KEY),)
    return _fernet(keys)


def encrypt(text: str) -> str:
    return _current().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    """Raises InvalidToken when no configured key opens it (a dropped key, or tampering)."""
    return _current().decrypt(token.encode()).decode()


def reencrypt(token: str) -> str:
    """The same value under the first (current) key."""
    return _current().rotate(token.encode()).decode()
