"""Signed unsubscribe tokens.

A token carries a workspace id, a campaign id, a recipient id and the
address (email or phone number) that the message went to. The workspace
names the suppression list that the address goes on, even after the
campaign is deleted. Tokens signed before workspaces existed carry no
workspace id: they are read as belonging to the campaign's workspace, or to
the oldest workspace when the campaign is gone.

A token is signed with SECRET_KEY under a salt of its own, so no other
signed value of the app is accepted as a token. It does not expire, because
people unsubscribe from old messages too. Changing SECRET_KEY invalidates
every token sent until then.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, reverse

SALT = "suppressions.unsubscribe"


class InvalidToken(ValueError):
    """A token that was changed, cut short or signed with another key."""


@dataclass(frozen=True)
class UnsubscribeToken:
    # None in a token signed before workspaces existed.
    workspace_id: int | None
    campaign_id: int
    recipient_id: int
    address: str

    @property
    def is_email(self) -> bool:
        """True for an email address; phone numbers never contain "@"."""
        return "@" in self.address


def make_token(campaign_id: int, recipient_id: int, address: str, *, workspace_id: int) -> str:
    """Sign the workspace id, campaign id, recipient id and address into a URL-safe token."""
    # Not compressed: zlib seldom shortens so small a value, and a dispatch
    # signs one token per recipient.
    return signing.dumps([workspace_id, campaign_id, recipient_id, address], salt=SALT)


def read_token(token: str) -> UnsubscribeToken:
    """Check the token's signature and return what it carries.

    Raises InvalidToken when the signature does not match or the content is
    not what `make_token` writes.
    """
    try:
        value = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise InvalidToken(
            "The unsubscribe link is invalid: it was changed or cut short. "
            "Open the link from the message again."
        ) from None
    if isinstance(value, list) and len(value) == 3:
        # Signed before workspaces existed.
        value = [None, *value]
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not (value[0] is None or type(value[0]) is int)
        or not all(type(part) is int for part in value[1:3])
        or not isinstance(value[3], str)
        or not value[3]
    ):
        raise InvalidToken("The unsubscribe link is invalid: its content is malformed.")
    return UnsubscribeToken(
        workspace_id=value[0], campaign_id=value[1], recipient_id=value[2], address=value[3]
    )


def unsubscribe_urls(
    campaign_id: int, recipient_id: int, address: str, *, workspace_id: int
) -> tuple[str, str]:
    """Return the absolute URLs of the unsubscribe page and of its one-click POST.

    The second goes into a message's `List-Unsubscribe` header, together with
    `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058). Both start
    with SITE_URL.
    """
    token = make_token(campaign_id, recipient_id, address, workspace_id=workspace_id)
    page, one_click = _paths()
    return (
        settings.SITE_URL + page.replace(_PLACEHOLDER, token),
        settings.SITE_URL + one_click.replace(_PLACEHOLDER, token),
    )


# Stands for the token in the cached paths. Tokens never contain it: they
# are URL-safe base64 with ":" separators.
_PLACEHOLDER = "~token~"


@functools.cache
def _paths() -> tuple[str, str]:
    """Return the two unsubscribe paths with a placeholder for the token.

    A dispatch builds URLs for every recipient, and reverse() costs more than
    signing the token, so it runs once per process. The paths leave out the
    script prefix of the request being served, if any, because SITE_URL
    already names where the app is served.
    """
    prefix = get_script_prefix()
    return (
        "/" + reverse("suppressions:unsubscribe", args=[_PLACEHOLDER]).removeprefix(prefix),
        "/" + reverse("suppressions:one_click", args=[_PLACEHOLDER]).removeprefix(prefix),
    )
