"""Global rate limits shared by every worker process on every host, stored in Redis.

Each limit is a token bucket implemented with GCRA (the generic cell rate
algorithm): the key stores one timestamp, the bucket's theoretical arrival
time (TAT). A bucket with rate `r` and burst `b` grants a request for `n`
tokens at time `now` when `max(TAT, now) + n / r - b / r <= now`, and then
moves TAT to `max(TAT, now) + n / r`. A missing key is a full bucket.

One Lua script checks and updates every bucket of a limiter atomically, and
it reads the time with Redis's TIME command, so hosts with skewed clocks
share one clock. A request takes tokens from all of its buckets or from none,
so a worker never keeps a provider token while it waits for a campaign token.

When Redis is unreachable, every call raises the redis-py error
(`redis.exceptions.ConnectionError`, `TimeoutError`, ...) once the client's
own retries are spent (redis-py 8 clients retry 3 times with backoff by
default). The caller decides whether to retry, wait or send without a limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

# The script stores time in whole microseconds and rounds every TAT up, so
# each grant costs up to 1 µs more than tokens / rate. Above about 10,000
# tokens per second that makes the limiter measurably slower than its rate
# (up to 1% at 10,000), and at 1,000,000 the interval is the clock's 1 µs.
MAX_RATE = 1_000_000.0

# acquire() sleeps at most this long before it runs the script again, so a
# bucket reset (a deleted key) is noticed within this many seconds.
MAX_SLEEP_SECONDS = 1.0

# Seconds that limiter_for's Redis client waits to connect or for a reply
# before it raises redis.exceptions.TimeoutError.
REDIS_SOCKET_TIMEOUT_SECONDS = 5.0

# Seconds that a thread waits for a free connection of limiter_for's pool
# before it raises redis.exceptions.ConnectionError, which callers already
# treat as Redis being unavailable. A call uses a connection for one script
# round trip, so threads wait this long only when Redis stops responding.
POOL_TIMEOUT_SECONDS = 30.0

# KEYS: one bucket key per limit.
# ARGV[1]: tokens requested. Then for bucket i (1-based):
#   ARGV[2 * i]: emission interval, microseconds per token (1e6 / rate);
#   ARGV[2 * i + 1]: burst, tokens.
# Returns 0 when the tokens were taken from every bucket, otherwise the wait
# in whole microseconds (the max over the buckets) and changes nothing.
#
# The grant test compares offsets from `now` rather than absolute times, so
# a full bucket grants even when the interval is fractional. The stored TAT
# is rounded up to a whole microsecond, which adds under 1 µs per grant.
#
# Redis 5 and later replicate a script's writes, not the script, so writing
# after the non-deterministic TIME call is allowed.
_ACQUIRE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tokens = tonumber(ARGV[1])

local wait = 0
local new_tats = {}
for i, key in ipairs(KEYS) do
    local interval = tonumber(ARGV[2 * i])
    local burst = tonumber(ARGV[2 * i + 1])

    local tat = now
    local stored = redis.call('GET', key)
    if stored then
        tat = math.max(tonumber(stored), now)
    end

    -- The request fits when TAT + tokens * interval - burst * interval <= now.
    local overdraft = (tat - now) + (tokens - burst) * interval
    if overdraft > 0 then
        wait = math.max(wait, math.ceil(overdraft))
    end
    new_tats[i] = tat + math.ceil(tokens * interval)
end

if wait > 0 then
    return wait
end

-- The key expires when its bucket is full again, because a missing key
-- means a full bucket. string.format keeps every digit: Redis would turn a
-- Lua number argument into a string with only 14 significant digits.
for i, key in ipairs(KEYS) do
    local ttl_ms = math.max(1, math.ceil((new_tats[i] - now) / 1000))
    redis.call('SET', key, string.format('%d', new_tats[i]),
               'PX', string.format('%d', ttl_ms))
end
return 0
"""


class RateLimitTimeout(Exception):
    """Raised by acquire() when the tokens would not be available before its timeout."""

    def __init__(self, keys: Sequence[str], wait: float, timeout: float) -> None:
        self.keys = tuple(keys)
        self.wait = wait
        self.timeout = timeout
        super().__init__(
            f"rate limit timed out: {', '.join(self.keys)} needs a wait of {wait:.3f} s, "
            f"longer than what is left of the {timeout:.3f} s timeout"
        )


def default_burst(rate: float) -> int:
    """Return the default bucket capacity for `rate`: a tenth of a second of tokens, at least 1."""
    return max(1, round(rate / 10))


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"invalid rate limit key {key!r}: expected a non-empty string")


def _check_rate(key: str, rate: float) -> None:
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or not 0 < rate <= MAX_RATE
    ):
        raise ValueError(
            f"invalid rate {rate!r} for {key}: expected tokens per second, "
            f"greater than 0 and at most {MAX_RATE:g}"
        )


@dataclass(frozen=True)
class Limit:
    """One bucket: its Redis key, its rate in tokens per second and its capacity in tokens."""

    key: str
    rate: float
    burst: int

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_rate(self.key, self.rate)
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(
                f"invalid burst {self.burst!r} for {self.key}: expected an integer of at least 1"
            )

    @property
    def interval_us(self) -> float:
        """Microseconds per token."""
        return 1_000_000 / self.rate


class MultiRateLimiter:
    """A set of buckets that every request takes tokens from together, or not at all.

    The object stores only its configuration, so every process that builds
    one with the same keys shares the same buckets. All keys must be on one
    Redis server, and Redis Cluster would need them in one hash slot.
    """

    def __init__(
        self,
        client: redis.Redis,
        limits: Sequence[Limit | tuple[str, float, int | None]],
    ) -> None:
        """Validate `limits`, given as Limit objects or (key, rate, burst) tuples.

        A burst of None means default_burst(rate). Raises ValueError for an
        empty list, a duplicate key, or an invalid key, rate or burst.
        """
        if not limits:
            raise ValueError("invalid rate limits: expected at least one (key, rate, burst)")

        parsed: list[Limit] = []
        for limit in limits:
            if isinstance(limit, Limit):
                parsed.append(limit)
                continue
            key, rate, burst = limit
            if burst is None:
                # default_burst needs a valid rate. Limit checks the key and the burst.
                _check_rate(key, rate)
            parsed.append(Limit(key, rate, default_burst(rate) if burst is None else burst))

        keys = [limit.key for limit in parsed]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            # The script would read the old TAT twice and write one update.
            raise ValueError(f"invalid rate limits: duplicate keys {', '.join(duplicates)}")

        self.client = client
        self.limits: tuple[Limit, ...] = tuple(parsed)
        self.max_tokens = min(limit.burst for limit in self.limits)
        self._script = client.register_script(_ACQUIRE_SCRIPT)
        self._keys = keys
        self._bucket_args: list[float] = []
        for limit in self.limits:
            self._bucket_args += [limit.interval_us, limit.burst]

    def try_acquire(self, tokens: int = 1) -> float:
        """Take `tokens` from every bucket and return 0.0, or take none and return the wait.

        The wait is in seconds, until every bucket would hold `tokens` if no
        other process takes them first. Raises ValueError when `tokens` is
        below 1 or above the smallest burst, since such a request never fits.
        """
        self._check_tokens(tokens)
        wait_us = self._script(keys=self._keys, args=[tokens, *self._bucket_args])
        return int(wait_us) / 1_000_000

    def acquire(self, tokens: int = 1, timeout: float | None = None) -> None:
        """Block until `tokens` are taken from every bucket.

        Raises RateLimitTimeout, without sleeping first, as soon as a wait
        would end after `timeout` seconds; timeout=None waits without limit.
        A caller that must react to a cancellation can call this with a short
        timeout in a loop and check between calls.

        NOTE: waiters are not served in order. Every process sleeps for its
        own wait and retries, so under contention one of them can wait
        longer than the first wait that try_acquire() returned to it.
        """
        self._check_tokens(tokens)
        if timeout is not None and (math.isnan(timeout) or timeout < 0):
            raise ValueError(f"invalid timeout {timeout!r}: expected seconds >= 0, or None")

        max_seconds = math.inf if timeout is None else timeout
        deadline = time.monotonic() + max_seconds
        while True:
            wait = self.try_acquire(tokens)
            if wait == 0:
                return
            if time.monotonic() + wait > deadline:
                raise RateLimitTimeout(self._keys, wait, max_seconds)
            time.sleep(min(wait, MAX_SLEEP_SECONDS))

    def _check_tokens(self, tokens: int) -> None:
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise ValueError(f"invalid tokens {tokens!r}: expected an integer")
        if not 1 <= tokens <= self.max_tokens:
            raise ValueError(
                f"invalid tokens {tokens}: expected 1 to {self.max_tokens}, "
                f"the smallest burst of {', '.join(self._keys)}"
            )


class RateLimiter(MultiRateLimiter):
    """A single bucket: `rate` tokens per second, holding at most `burst` tokens."""

    def __init__(
        self, client: redis.Redis, key: str, rate: float, burst: int | None = None
    ) -> None:
        """Validate the bucket. A burst of None means default_burst(rate). Raises ValueError."""
        super().__init__(client, [(key, rate, burst)])

    @property
    def key(self) -> str:
        return self.limits[0].key

    @property
    def rate(self) -> float:
        return self.limits[0].rate

    @property
    def burst(self) -> int:
        return self.limits[0].burst


def provider_key(provider_name: str) -> str:
    return f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:ratelimit:provider:{provider_name}"


def campaign_key(campaign_id: int) -> str:
    return f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:ratelimit:campaign:{campaign_id}"


def pool_size() -> int:
    """Return the number of Redis connections that limiter_for's client keeps per process.

    Every delivery thread takes its tokens through this client, and a worker
    process runs DELIVERY_CONCURRENCY threads per worker loop times its loops.
    One loop's worth of connections lets all threads of one loop call at once.
    Threads of further loops wait for a free connection (for about one script
    round trip), where redis-py 8's default pool would raise MaxConnectionsError
    once its 100 connections are in use.
    """
    return max(1, settings.DELIVERY_CONCURRENCY)


@cache
def _client(url: str, max_connections: int) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
    )
    return redis.Redis(connection_pool=pool)


def limiter_for(
    provider_name: str, campaign_id: int | None, campaign_rate: float | None
) -> MultiRateLimiter | None:
    """Build the limiter for one provider and, optionally, one campaign.

    The provider bucket uses DELIVERY_RATE_LIMIT_PER_SECOND (0 or unset: no
    limit) and DELIVERY_RATE_LIMIT_BURST (0 or unset: default_burst). The campaign
    bucket uses `campaign_rate` (None or 0: no limit) with default_burst.
    Returns None when neither limit applies. Raises ValueError for an invalid
    rate or burst, or for a campaign_rate without a campaign_id.
    """
    limits: list[tuple[str, float, int | None]] = []

    provider_rate = float(getattr(settings, "DELIVERY_RATE_LIMIT_PER_SECOND", 0) or 0)
    if provider_rate != 0:
        provider_burst = getattr(settings, "DELIVERY_RATE_LIMIT_BURST", None) or None
        limits.append((provider_key(provider_name), provider_rate, provider_burst))

    if campaign_rate is not None and campaign_rate != 0:
        if campaign_id is None:
            raise ValueError(f"invalid campaign_rate {campaign_rate!r}: campaign_id is missing")
        limits.append((campaign_key(campaign_id), campaign_rate, None))

    if not limits:
        return None
    return MultiRateLimiter(_client(settings.REDIS_URL, pool_size()), limits)
