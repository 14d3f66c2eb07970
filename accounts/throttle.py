"""Login throttling: failed sign-ins counted per account and per client address in Redis.

Each failure adds one to two counters that expire LOGIN_THROTTLE_WINDOW_SECONDS
after the first failure of their window. While either counter is at its
limit, sign-in is refused for that account or from that address, even with
the right password, until the window ends. A successful sign-in clears the
account's counter. When Redis is unreachable, sign-in is not throttled and a
warning is logged, so that an outage of the cache does not lock everyone out.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lockout:
    """A refusal to sign in: its scope and the seconds it still lasts."""

    scope: str  # "account" or "address"
    seconds: int

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.seconds / 60))
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        if self.scope == "account":
            return (
                f"Too many failed sign-ins for this account. Try again in {wait}, "
                "or reset your password."
            )
        return f"Too many failed sign-ins from your network address. Try again in {wait}."


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _keys(username: str, address: str) -> dict[str, str]:
    # Hashed, so that usernames and addresses do not appear in Redis keys.
    prefix = settings.LIVE_UPDATES_CHANNEL_PREFIX

    def digest(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()[:32]

    return {
        "account": f"{prefix}:login-failures:account:{digest(username.strip().casefold())}",
        "address": f"{prefix}:login-failures:address:{digest(address)}",
    }


def _limits() -> dict[str, int]:
    return {
        "account": settings.LOGIN_MAX_FAILURES_PER_ACCOUNT,
        "address": settings.LOGIN_MAX_FAILURES_PER_ADDRESS,
    }


def lockout(username: str, address: str) -> Lockout | None:
    """Return the lockout in force for this username or client address, if any."""
    keys = _keys(username, address)
    try:
        with _client().pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.get(key)
                pipe.ttl(key)
            values = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("login throttling unavailable, not applied: %s", exc)
        return None
    for index, (scope, limit) in enumerate(_limits().items()):
        count, ttl = values[2 * index], values[2 * index + 1]
        if count is not None and int(count) >= limit:
            return Lockout(scope=scope, seconds=max(int(ttl), 1))
    return None


def record_failure(username: str, address: str) -> None:
    """Count a failed sign-in against the username and the client address."""
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    try:
        with _client().pipeline(transaction=True) as pipe:
            for key in _keys(username, address).values():
                pipe.incr(key)
                # NX: the window starts at the first failure and is not
                # pushed back by later ones.
                pipe.expire(key, window, nx=True)
            pipe.execute()
    except redis.RedisError as exc:
        logger.warning("login throttling unavailable, failure not counted: %s", exc)


def clear_account(username: str) -> None:
    """Forget the failures of this username, after a successful sign-in."""
    try:
        _client().delete(_keys(username, "")["account"])
    except redis.RedisError as exc:
        logger.warning("login throttling unavailable, counter not cleared: %s", exc)
