"""Signed access to a campaign's event stream, for clients without a session.

EventSource cannot send an Authorization header, so the API hands out a
stream URL whose `access` query parameter is signed with SECRET_KEY (salt
STREAM_ACCESS_SALT) and names the campaign, the user and the workspace.
It is valid for API_STREAM_URL_MAX_AGE_SECONDS, and only while the user is
active and still a member of the workspace. Logs show the parameter as
`access=[redacted]` (suppressions/redaction.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

STREAM_ACCESS_SALT = "live.stream-access"
PARAMETER = "access"


@dataclass(frozen=True)
class StreamAccess:
    campaign_id: int
    user_id: int
    workspace_id: int


def sign_access(access: StreamAccess) -> str:
    payload = {"c": access.campaign_id, "u": access.user_id, "w": access.workspace_id}
    return signing.dumps(payload, salt=STREAM_ACCESS_SALT, compress=False)


def read_access(value: str, campaign_id: int) -> StreamAccess | None:
    """Return the access that `value` signs for `campaign_id`, or None when it is
    invalid, expired or for another campaign."""
    try:
        payload = signing.loads(
            value, salt=STREAM_ACCESS_SALT, max_age=settings.API_STREAM_URL_MAX_AGE_SECONDS
        )
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    try:
        access = StreamAccess(int(payload["c"]), int(payload["u"]), int(payload["w"]))
    except (KeyError, TypeError, ValueError):
        return None
    return access if access.campaign_id == campaign_id else None
