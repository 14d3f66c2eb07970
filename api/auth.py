"""Bearer-token authentication of API requests.

A token acts as the user who created it, within the workspace it was
created in. It stops working when it is revoked, when its user is
deactivated and when its user leaves the workspace. Session cookies are
not read, so API requests need no CSRF token.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from accounts.models import Membership
from api.errors import ApiError
from api.models import ApiToken, hash_token

# last_used_at is written at most once per this period, so that a busy
# client does not cause one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)

# Longer than any token this app issues; longer headers are not hashed.
_MAX_TOKEN_LENGTH = 200


_INVALID_TOKEN = (
    "The token is invalid or revoked, or its user no longer belongs to its workspace "
    "or was deactivated. Create a new token on the API tokens page of the workspace."
)


class TokenAuth(HttpBearer):
    """django-ninja authentication: `Authorization: Bearer <token>`.

    Raises ApiError (401) rather than returning None, so that a missing and
    an invalid token get different codes. Never logs the header.
    """

    def __call__(self, request: HttpRequest) -> ApiToken:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise ApiError(
                401,
                "token_missing",
                "The Authorization header is missing. Send Authorization: Bearer <token>, "
                "with a token from the API tokens page of your workspace.",
            )
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "token_invalid",
                "The Authorization header must be Bearer followed by a token.",
            )
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        """Look the token up and make the request act as its user in its workspace."""
        api_token = _active_token(token)
        if api_token is None:
            raise ApiError(401, "token_invalid", _INVALID_TOKEN)
        membership = (
            Membership.objects.filter(
                user_id=api_token.created_by_id, workspace_id=api_token.workspace_id
            )
            .select_related("workspace")
            .first()
        )
        if membership is None:
            raise ApiError(401, "token_invalid", _INVALID_TOKEN)
        _touch(api_token)
        request.user = api_token.created_by
        request.workspace = membership.workspace  # type: ignore[attr-defined]
        request.membership = membership  # type: ignore[attr-defined]
        request.api_token = api_token  # type: ignore[attr-defined]
        return api_token


def _active_token(token: str) -> ApiToken | None:
    if len(token) > _MAX_TOKEN_LENGTH:
        return None
    return (
        ApiToken.objects.select_related("created_by")
        .filter(secret_hash=hash_token(token), revoked_at__isnull=True, created_by__is_active=True)
        .first()
    )


def _touch(api_token: ApiToken) -> None:
    """Record that the token was used, unless that was recorded less than a minute ago."""
    now = timezone.now()
    last_used = api_token.last_used_at
    if last_used is not None and last_used >= now - LAST_USED_RESOLUTION:
        # Fresh enough: no query at all for a busy client's requests.
        return
    # Conditional, so that concurrent requests write the column once.
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiToken.objects.filter(stale, pk=api_token.pk).update(last_used_at=now)
