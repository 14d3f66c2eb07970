"""The Redis rate limiter: bucket arithmetic, sharing across threads and processes, limiter_for.

Timing checks use Redis's clock, and only bounds that stay true however slow
the machine is. A time span runs from a TIME call before the first request
to a TIME call after the last grant, so it is never shorter than the span
between the grants themselves.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatch.rate_limit import (
    Limit,
    MultiRateLimiter,
    RateLimiter,
    RateLimitTimeout,
    campaign_key,
    limiter_for,
    provider_key,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Tests that wait pass this to acquire(), so a limiter that never grants fails
# the test with RateLimitTimeout instead of hanging the run.
ACQUIRE_TIMEOUT = 30.0


def redis_now(client: redis.Redis) -> float:
    """Return Redis's clock in seconds."""
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000


def wait_for_redis_time(client: redis.Redis, target: float) -> None:
    """Sleep until Redis's clock reads at least `target` seconds."""
    while (remaining := target - redis_now(client)) > 0:
        time.sleep(min(remaining, 0.05))


@pytest.fixture
def new_key(redis_client: redis.Redis) -> Iterator[Callable[[], str]]:
    """Return a function that makes unique bucket keys, deleted after the test."""
    keys: list[str] = []

    def make() -> str:
        key = f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:ratelimit:test:{uuid.uuid4().hex}"
        keys.append(key)
        return key

    yield make
    if keys:
        redis_client.delete(*keys)


# Bucket arithmetic


def test_fresh_bucket_grants_burst_then_waits(redis_client, new_key):
    # 7 per second is a fractional interval in microseconds, which the script rounds.
    rate, burst = 7.0, 4
    limiter = RateLimiter(redis_client, new_key(), rate, burst)

    before = redis_now(redis_client)
    grants = [limiter.try_acquire() for _ in range(burst)]
    wait = limiter.try_acquire()
    elapsed = redis_now(redis_client) - before

    assert grants == [0.0] * burst
    assert wait > 0
    # The wait is one interval minus the time since the first grant. Rounding
    # up adds less than 1 µs per grant and 1 µs to the wait.
    assert wait <= 1 / rate + (burst + 1) * 1e-6
    assert wait >= 1 / rate - elapsed


def test_bucket_refills_after_returned_wait(redis_client, new_key):
    limiter = RateLimiter(redis_client, new_key(), rate=3.0, burst=1)
    assert limiter.try_acquire() == 0.0

    wait = limiter.try_acquire()
    denied_by = redis_now(redis_client)
    wait_for_redis_time(redis_client, denied_by + wait)

    assert wait > 0
    assert limiter.try_acquire() == 0.0


def test_full_bucket_grants_with_fractional_interval(redis_client, new_key):
    # 1e6 / 3 µs per token: a grant test on the rounded TAT would deny forever.
    for rate in (3.0, 0.7, 1234.5):
        limiter = RateLimiter(redis_client, new_key(), rate, burst=1)

        assert limiter.try_acquire() == 0.0


def test_default_burst_is_tenth_of_rate(redis_client, new_key):
    assert RateLimiter(redis_client, new_key(), rate=100.0).burst == 10
    assert RateLimiter(redis_client, new_key(), rate=3.0).burst == 1
    assert RateLimiter(redis_client, new_key(), rate=0.5).burst == 1


def test_denied_request_changes_nothing(redis_client, new_key):
    key = new_key()
    limiter = RateLimiter(redis_client, key, rate=0.01, burst=1)
    assert limiter.try_acquire() == 0.0
    stored = redis_client.get(key)

    assert limiter.try_acquire() > 0
    assert redis_client.get(key) == stored


def test_request_for_several_tokens(redis_client, new_key):
    limiter = RateLimiter(redis_client, new_key(), rate=0.01, burst=5)

    assert limiter.try_acquire(3) == 0.0
    assert limiter.try_acquire(3) > 0
    assert limiter.try_acquire(2) == 0.0
    assert limiter.try_acquire(1) > 0


# Expiry


def test_grant_sets_ttl_until_bucket_is_full(redis_client, new_key):
    key = new_key()
    limiter = RateLimiter(redis_client, key, rate=0.01, burst=3)

    before = redis_now(redis_client)
    assert limiter.try_acquire() == 0.0
    ttl_after_one = redis_client.pttl(key)
    assert limiter.try_acquire(2) == 0.0
    ttl_after_three = redis_client.pttl(key)
    elapsed_ms = (redis_now(redis_client) - before) * 1000

    # Each token is 100 s at 0.01 tokens per second.
    assert 0 < ttl_after_one <= 100_000
    assert ttl_after_three <= 300_000
    assert ttl_after_three >= 300_000 - elapsed_ms - 1


def test_idle_key_expires(redis_client, new_key):
    key = new_key()
    limiter = RateLimiter(redis_client, key, rate=100.0, burst=1)
    assert limiter.try_acquire() == 0.0

    deadline = time.monotonic() + 5
    while redis_client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.01)

    assert redis_client.exists(key) == 0


# acquire


def test_acquire_waits_for_refill(redis_client, new_key):
    rate = 20.0
    limiter = RateLimiter(redis_client, new_key(), rate, burst=1)

    before = redis_now(redis_client)
    limiter.acquire(timeout=ACQUIRE_TIMEOUT)
    limiter.acquire(timeout=ACQUIRE_TIMEOUT)
    elapsed = redis_now(redis_client) - before

    assert elapsed >= 1 / rate


def test_acquire_times_out_when_wait_is_longer(redis_client, new_key):
    key = new_key()
    limiter = RateLimiter(redis_client, key, rate=0.01, burst=1)
    limiter.acquire()
    stored = redis_client.get(key)

    with pytest.raises(RateLimitTimeout) as raised:
        limiter.acquire(timeout=0.05)

    assert raised.value.wait > 0.05
    assert raised.value.timeout == 0.05
    assert raised.value.keys == (key,)
    assert key in str(raised.value)
    assert redis_client.get(key) == stored


def test_acquire_with_zero_timeout_takes_free_token(redis_client, new_key):
    limiter = RateLimiter(redis_client, new_key(), rate=0.01, burst=1)

    limiter.acquire(timeout=0)

    with pytest.raises(RateLimitTimeout):
        limiter.acquire(timeout=0)


def test_unreachable_redis_raises_connection_error():
    # Bind and close a loopback port so that nothing listens on it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # No client retries, which would only add backoff sleeps before the error.
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
    )
    limiter = RateLimiter(client, "unreachable", rate=1.0)

    with pytest.raises(redis.ConnectionError):
        limiter.acquire(timeout=1)
    client.close()


# Sharing one bucket


def test_threads_never_exceed_rate(redis_client, new_key):
    rate, burst, window = 30.0, 5, 0.6
    key = new_key()
    grants: list[float] = []

    def hammer(end: float) -> None:
        limiter = RateLimiter(redis_client, key, rate, burst)
        while redis_now(redis_client) < end:
            if limiter.try_acquire() == 0.0:
                grants.append(1)

    start = redis_now(redis_client)
    threads = [threading.Thread(target=hammer, args=(start + window,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = redis_now(redis_client) - start

    assert len(grants) >= burst
    assert len(grants) <= burst + rate * elapsed


def test_threads_share_one_bucket(redis_client, new_key):
    rate, burst, threads_count, tokens_each = 30.0, 5, 4, 10
    total = threads_count * tokens_each
    key = new_key()
    grants: list[int] = []

    def take() -> None:
        limiter = RateLimiter(redis_client, key, rate, burst)
        for _ in range(tokens_each):
            limiter.acquire(timeout=ACQUIRE_TIMEOUT)
            grants.append(1)

    before = redis_now(redis_client)
    threads = [threading.Thread(target=take) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = redis_now(redis_client) - before

    assert len(grants) == total
    assert elapsed >= (total - burst) / rate


# Each child process waits for "go" on stdin, so both start together, and
# prints Redis's time before its first request and after its last grant.
CHILD_PROCESS_CODE = """
import json, sys
import redis
from dispatch.rate_limit import RateLimiter

url, key, rate, burst, count = sys.argv[1:6]
client = redis.Redis.from_url(url)
limiter = RateLimiter(client, key, float(rate), int(burst))
print("ready", flush=True)
sys.stdin.readline()

def now():
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000

start = now()
granted = 0
for _ in range(int(count)):
    limiter.acquire(timeout=30)
    granted += 1
print(json.dumps({"start": start, "end": now(), "granted": granted}), flush=True)
"""


def test_processes_share_one_bucket(new_key):
    rate, burst, tokens_each = 30.0, 4, 15
    key = new_key()
    args = [settings.REDIS_URL, key, str(rate), str(burst), str(tokens_each)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_PROCESS_CODE, *args],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=60)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()

    assert [child.returncode for child in children] == [0, 0]
    results = [json.loads(output) for output in outputs]
    total = sum(result["granted"] for result in results)
    elapsed = max(result["end"] for result in results) - min(result["start"] for result in results)
    assert total == 2 * tokens_each
    assert elapsed >= (total - burst) / rate


# Several buckets


def test_multi_takes_from_all_buckets(redis_client, new_key):
    provider, campaign = new_key(), new_key()
    both = MultiRateLimiter(redis_client, [(provider, 0.02, 5), (campaign, 0.01, 1)])
    provider_only = RateLimiter(redis_client, provider, 0.02, 5)

    before = redis_now(redis_client)
    assert both.try_acquire() == 0.0
    wait = both.try_acquire()
    elapsed = redis_now(redis_client) - before

    # The campaign bucket is empty and refills one token in 100 s, longer than
    # the provider bucket's 50 s, so its wait is the one returned.
    assert wait <= 100 + 1e-6
    assert wait >= 100 - elapsed - 1e-6
    # The granted request took one provider token, the denied one took none.
    assert [provider_only.try_acquire() for _ in range(4)] == [0.0] * 4
    assert provider_only.try_acquire() > 0


def test_multi_denied_by_provider_leaves_campaign(redis_client, new_key):
    provider, campaign = new_key(), new_key()
    provider_only = RateLimiter(redis_client, provider, 0.01, 2)
    campaign_only = RateLimiter(redis_client, campaign, 0.01, 1)
    both = MultiRateLimiter(redis_client, [(provider, 0.01, 2), (campaign, 0.01, 1)])
    assert provider_only.try_acquire(2) == 0.0

    assert both.try_acquire() > 0
    assert redis_client.exists(campaign) == 0
    assert campaign_only.try_acquire() == 0.0


def test_multi_sets_ttl_on_every_key(redis_client, new_key):
    provider, campaign = new_key(), new_key()
    both = MultiRateLimiter(redis_client, [(provider, 0.02, 5), (campaign, 0.01, 1)])

    assert both.try_acquire() == 0.0

    assert 0 < redis_client.pttl(provider) <= 50_000
    assert 0 < redis_client.pttl(campaign) <= 100_000


# Validation


@pytest.mark.parametrize(
    ("key", "rate", "burst", "message"),
    [
        ("k", 0, 1, "invalid rate 0"),
        ("k", -1.0, 1, "invalid rate -1.0"),
        ("k", float("nan"), None, "invalid rate nan"),
        ("k", float("inf"), None, "invalid rate inf"),
        ("k", 2_000_000.0, 1, "invalid rate 2000000.0"),
        ("k", True, 1, "invalid rate True"),
        ("k", "10", 1, "invalid rate '10'"),
        ("k", 1.0, 0, "invalid burst 0"),
        ("k", 1.0, -3, "invalid burst -3"),
        ("k", 1.0, 1.5, "invalid burst 1.5"),
        ("k", 1.0, True, "invalid burst True"),
        ("", 1.0, 1, "invalid rate limit key ''"),
    ],
)
def test_invalid_limit_raises(redis_client, key, rate, burst, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RateLimiter(redis_client, key, rate, burst)


def test_invalid_limit_list_raises(redis_client):
    with pytest.raises(ValueError, match="at least one"):
        MultiRateLimiter(redis_client, [])
    with pytest.raises(ValueError, match="duplicate keys a"):
        MultiRateLimiter(redis_client, [("a", 1.0, 1), ("b", 1.0, 1), ("a", 2.0, 1)])


@pytest.mark.parametrize("tokens", [0, -1, 4, 1.5, True])
def test_invalid_tokens_raise(redis_client, tokens):
    limiter = MultiRateLimiter(redis_client, [("a", 1.0, 3), ("b", 1.0, 5)])

    with pytest.raises(ValueError, match="invalid tokens"):
        limiter.try_acquire(tokens)
    with pytest.raises(ValueError, match="invalid tokens"):
        limiter.acquire(tokens)


@pytest.mark.parametrize("timeout", [-1.0, float("nan")])
def test_invalid_timeout_raises(redis_client, timeout):
    limiter = RateLimiter(redis_client, "k", 1.0)

    with pytest.raises(ValueError, match="invalid timeout"):
        limiter.acquire(timeout=timeout)


# limiter_for


@pytest.fixture
def no_rate_settings(settings):
    """Remove the delivery rate settings, whether or not config/settings.py defines them."""
    del settings.DELIVERY_RATE_LIMIT_PER_SECOND
    del settings.DELIVERY_RATE_LIMIT_BURST
    return settings


def test_limiter_for_unset_is_unlimited(no_rate_settings):
    assert limiter_for("simulated", 7, None) is None
    assert limiter_for("simulated", 7, 0) is None
    assert limiter_for("simulated", None, None) is None


def test_limiter_for_zero_rate_is_unlimited(no_rate_settings):
    no_rate_settings.DELIVERY_RATE_LIMIT_PER_SECOND = 0

    assert limiter_for("simulated", 7, None) is None


def test_limiter_for_provider_rate(no_rate_settings):
    no_rate_settings.DELIVERY_RATE_LIMIT_PER_SECOND = 40.0

    limiter = limiter_for("simulated", 7, None)

    assert limiter is not None
    assert limiter.limits == (Limit(provider_key("simulated"), 40.0, 4),)
    prefix = settings.LIVE_UPDATES_CHANNEL_PREFIX
    assert limiter.limits[0].key == f"{prefix}:ratelimit:provider:simulated"


def test_limiter_for_provider_burst_setting(no_rate_settings):
    no_rate_settings.DELIVERY_RATE_LIMIT_PER_SECOND = 40.0
    no_rate_settings.DELIVERY_RATE_LIMIT_BURST = 12

    limiter = limiter_for("simulated", None, None)

    assert limiter is not None
    assert limiter.limits == (Limit(provider_key("simulated"), 40.0, 12),)


def test_limiter_for_zero_burst_uses_default(no_rate_settings):
    no_rate_settings.DELIVERY_RATE_LIMIT_PER_SECOND = 40.0
    no_rate_settings.DELIVERY_RATE_LIMIT_BURST = 0

    limiter = limiter_for("simulated", None, None)

    assert limiter is not None
    assert limiter.limits == (Limit(provider_key("simulated"), 40.0, 4),)


def test_limiter_for_campaign_rate_only(no_rate_settings):
    limiter = limiter_for("simulated", 7, 2.5)

    assert limiter is not None
    assert limiter.limits == (Limit(campaign_key(7), 2.5, 1),)
    prefix = settings.LIVE_UPDATES_CHANNEL_PREFIX
    assert limiter.limits[0].key == f"{prefix}:ratelimit:campaign:7"


def test_limiter_for_provider_and_campaign(no_rate_settings, redis_client):
    no_rate_settings.DELIVERY_RATE_LIMIT_PER_SECOND = 100.0
    provider_name = f"test-{uuid.uuid4().hex}"
    campaign_id = 2_000_000_000 + uuid.uuid4().int % 1_000_000

    limiter = limiter_for(provider_name, campaign_id, 0.01)

    assert limiter is not None
    assert limiter.limits == (
        Limit(provider_key(provider_name), 100.0, 10),
        Limit(campaign_key(campaign_id), 0.01, 1),
    )
    try:
        assert limiter.try_acquire() == 0.0
        assert limiter.try_acquire() > 0
    finally:
        redis_client.delete(provider_key(provider_name), campaign_key(campaign_id))


def test_limiter_for_waits_for_free_connection(no_rate_settings, redis_client, monkeypatch):
    no_rate_settings.DELIVERY_RATE_LIMIT_PER_SECOND = 1000.0
    no_rate_settings.DELIVERY_CONCURRENCY = 2
    acquirers = 8
    provider_name = f"test-{uuid.uuid4().hex}"
    limiter = limiter_for(provider_name, None, None)
    assert limiter is not None
    pool = limiter.client.connection_pool

    # The pool should have DELIVERY_CONCURRENCY connections and make callers wait.
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == 2

    # Take every connection out of the pool, and count the requests for one.
    held_connections = [pool.get_connection() for _ in range(pool.max_connections)]
    connection_requests = threading.Semaphore(0)
    get_connection = pool.get_connection

    def counting_get_connection(*args, **kwargs):
        connection_requests.release()
        return get_connection(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counting_get_connection)
    grants: list[int] = []
    errors: list[BaseException] = []

    def take() -> None:
        try:
            limiter.acquire(timeout=ACQUIRE_TIMEOUT)
            grants.append(1)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(acquirers)]
    try:
        for thread in threads:
            thread.start()
        for _ in range(acquirers):
            assert connection_requests.acquire(timeout=ACQUIRE_TIMEOUT)
        # Every acquirer has requested a connection, and none can have one yet.
        assert grants == []
        for connection in held_connections:
            pool.release(connection)
        for thread in threads:
            thread.join(timeout=ACQUIRE_TIMEOUT)
    finally:
        redis_client.delete(provider_key(provider_name))

    # Every acquirer should have waited for a connection and taken its token.
    assert errors == []
    assert len(grants) == acquirers


def test_limiter_for_campaign_rate_needs_id(no_rate_settings):
    with pytest.raises(ValueError, match="campaign_id is missing"):
        limiter_for("simulated", None, 5.0)


def test_limiter_for_negative_rate_raises(no_rate_settings):
    no_rate_settings.DELIVERY_RATE_LIMIT_PER_SECOND = -5.0

    with pytest.raises(ValueError, match=r"invalid rate -5\.0"):
        limiter_for("simulated", None, None)


def test_limiter_for_invalid_burst_raises(no_rate_settings):
    no_rate_settings.DELIVERY_RATE_LIMIT_PER_SECOND = 5.0
    no_rate_settings.DELIVERY_RATE_LIMIT_BURST = 2.5

    with pytest.raises(ValueError, match=r"invalid burst 2\.5"):
        limiter_for("simulated", None, None)


def test_limiter_for_negative_campaign_rate_raises(no_rate_settings):
    with pytest.raises(ValueError, match=r"invalid rate -1\.0"):
        limiter_for("simulated", 7, -1.0)
