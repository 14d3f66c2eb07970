"""API tokens and the Idempotency-Key records of the JSON API."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

TOKEN_NAME_MAX_LENGTH = 100
# Every token starts with this, so that secret scanners and people can tell
# what it is. The characters after it up to TOKEN_PREFIX_LENGTH are shown in
# lists, to tell tokens apart.
TOKEN_MARKER = "cdt_"
TOKEN_PREFIX_LENGTH = len(TOKEN_MARKER) + 8
# 32 random bytes, URL-safe base64: 43 characters.
TOKEN_SECRET_BYTES = 32

IDEMPOTENCY_KEY_MAX_LENGTH = 255


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored.

    A token carries 256 random bits, so a plain hash without salt or
    stretching suffices: the hash does not reveal the token.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    return TOKEN_MARKER + secrets.token_urlsafe(TOKEN_SECRET_BYTES)


class ApiToken(models.Model):
    """A bearer token that acts as its creator within one workspace.

    Only the SHA-256 hash of the token is stored; the token itself is shown
    once, when it is created.
    """

    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="api_tokens"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=TOKEN_NAME_MAX_LENGTH)
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(name__regex=r"\S"), name="api_token_name_not_blank"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, workspace_id: int, user: object, name: str) -> tuple[ApiToken, str]:
        """Create a token; returns the stored row and the token, which is not stored."""
        token = generate_token()
        row = cls.objects.create(
            workspace_id=workspace_id,
            created_by=user,
            name=name,
            prefix=token[:TOKEN_PREFIX_LENGTH],
            secret_hash=hash_token(token),
        )
        return row, token

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """The response that a request with an Idempotency-Key got, kept until `expires_at`.

    The row is inserted in the same transaction as the request's work, so a
    request that fails leaves no row. A second request with the same key
    waits on the unique index until the first one commits or rolls back.
    """

    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    # SHA-256 of the operation and of the request body in canonical JSON.
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="idempotency_workspace_key"),
        ]
        indexes = [
            models.Index(fields=["workspace", "expires_at"], name="idempotency_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.response_status})"
