"""A campaign page's stream stays connected while nothing happens.

The stream view waits for entries with XREAD BLOCK for up to
LIVE_UPDATES_KEEPALIVE_SECONDS. redis-py 8 gives each connection a
5-second socket timeout by default, so a read that blocks longer must not
use that default, or every idle stream fails after 5 s and its browser
reconnects. The browser hides keep-alive comments and reconnects by
itself, so this test reads the stream over HTTP.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from campaigns.models import Campaign
from tests.factories import session_cookie

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

# Longer than redis-py's default socket timeout of 5 s.
KEEPALIVE_SECONDS = 7.0


@pytest.fixture(scope="module")
def slow_keepalive_server(start_extra_app_server: Callable[[dict[str, str]], str]) -> str:
    return start_extra_app_server({"LIVE_UPDATES_KEEPALIVE_SECONDS": str(KEEPALIVE_SECONDS)})


def test_idle_stream_outlasts_redis_socket_timeout(
    slow_keepalive_server: str, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = make_campaign()
    connection = http.client.HTTPConnection(
        urlsplit(slow_keepalive_server).netloc, timeout=KEEPALIVE_SECONDS + 5
    )
    try:
        connection.request(
            "GET", f"/campaigns/{campaign.pk}/stream?ids=&after=0-0", headers=session_cookie()
        )
        response = connection.getresponse()
        assert response.status == 200
        opened = time.monotonic()
        lines = []
        # The server sends the retry delay, then the stream position, then
        # nothing until the keep-alive.
        while (line := response.readline()) and line != b": keep-alive\n":
            lines.append(line)
        waited = time.monotonic() - opened
    finally:
        connection.close()

    # It should keep the stream open until the keep-alive comment.
    assert line == b": keep-alive\n", f"the stream ended after {waited:.1f} s: {lines!r}"
    assert waited >= KEEPALIVE_SECONDS - 1, f"keep-alive after {waited:.1f} s"
