"""Per-second delivery counts in Redis and the header partial that shows them."""

from __future__ import annotations

import logging
import re
import socket
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
import redis
from django.template.loader import render_to_string

from campaigns.models import Campaign, CampaignStatus, Progress
from live import rates

# A Unix time at the start of a minute, so tests can place seconds on either
# side of a minute boundary. The counts' TTLs run from the real time of the write.
MINUTE_START = 1_700_000_040
assert MINUTE_START % 60 == 0

QUEUED_AND_IN_FLIGHT = Progress(queued=90, in_flight=10, sent=400, failed=20)


@pytest.fixture(autouse=True)
def rate_prefix(settings, redis_client: redis.Redis) -> Iterator[str]:
    """Give each test a key prefix of its own and delete its keys afterwards."""
    prefix = f"test-rates-{uuid.uuid4().hex[:12]}"
    settings.LIVE_UPDATES_CHANNEL_PREFIX = prefix
    yield prefix
    keys = list(redis_client.scan_iter(f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture(autouse=True)
def no_reported_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test as if no Redis outage had been logged."""
    monkeypatch.setattr(rates, "_outage_reported", False)


def campaign(status: CampaignStatus = Campaign.Status.PROCESSING, **fields) -> Campaign:
    """An unsaved campaign: `activity` reads only its id and status."""
    return Campaign(
        pk=fields.pop("pk", 41), name=fields.pop("name", "Spring launch"), status=status, **fields
    )


def record(redis_client: redis.Redis, *entries: tuple[int, int, int, float]) -> None:
    """Record (campaign id, sent, failed, at) entries in one pipeline, as a worker would."""
    pipe = redis_client.pipeline(transaction=False)
    for campaign_id, sent, failed, at in entries:
        rates.record(pipe, campaign_id, sent, failed, at=at)
    pipe.execute()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Recording and reading back


def test_counts_read_back_per_second(redis_client):
    record(
        redis_client,
        (41, 3, 1, MINUTE_START + 10.2),
        (41, 2, 0, MINUTE_START + 10.9),
        (41, 0, 4, MINUTE_START + 12.0),
        # Another campaign's outcomes stay apart.
        (42, 100, 100, MINUTE_START + 10.5),
    )

    result = rates.activity(campaign(), QUEUED_AND_IN_FLIGHT, now=MINUTE_START + 13.5)

    assert result.available
    assert len(result.sent) == rates.CHART_SECONDS
    assert len(result.failed) == rates.CHART_SECONDS
    # The window ends at second 13, which is incomplete; index -1 is second 12.
    assert result.sent[-3:] == (5, 0, 0)
    assert result.failed[-3:] == (1, 0, 4)
    assert result.sent_total == 5
    assert result.failed_total == 5
    assert result.peak == 6
    assert result.ends_now


def test_window_is_the_last_complete_minute(redis_client):
    now = MINUTE_START + 30.5
    record(
        redis_client,
        (41, 7, 0, now - 61),  # one second before the window
        (41, 1, 0, now - 60),  # the window's first second, in the previous minute
        (41, 2, 0, now - 31),  # the previous minute's last second
        (41, 3, 0, now - 30),  # this minute's first second
        (41, 4, 0, now - 1),  # the window's last second
        (41, 9, 0, now),  # the current second, still incomplete
    )

    result = rates.activity(campaign(), QUEUED_AND_IN_FLIGHT, now=now)

    assert result.sent[0] == 1
    assert result.sent[29] == 2
    assert result.sent[30] == 3
    assert result.sent[-1] == 4
    assert result.sent_total == 1 + 2 + 3 + 4


def test_recording_nothing_queues_no_command(redis_client):
    pipe = redis_client.pipeline(transaction=False)

    rates.record(pipe, 41, 0, 0, at=MINUTE_START)

    assert len(pipe) == 0


def test_record_defaults_to_current_time(redis_client):
    pipe = redis_client.pipeline(transaction=False)
    rates.record(pipe, 41, 2, 1)
    pipe.execute()

    result = rates.activity(campaign(Campaign.Status.COMPLETED), QUEUED_AND_IN_FLIGHT)

    assert result.sent_total == 2
    assert result.failed_total == 1


# Throughput and time to finish


def test_throughput_averages_complete_seconds(redis_client, settings):
    settings.LIVE_THROUGHPUT_WINDOW_SECONDS = 5
    now = MINUTE_START + 20.7
    record(
        redis_client,
        (41, 500, 0, now - 6),  # before the window
        (41, 8, 2, now - 5),
        (41, 10, 0, now - 4),
        (41, 0, 10, now - 3),
        # now - 2 has no outcomes and still counts as a second of the window.
        (41, 20, 0, now - 1),
        (41, 1000, 0, now),  # the current second, still incomplete
    )

    result = rates.activity(campaign(), QUEUED_AND_IN_FLIGHT, now=now)

    assert result.throughput == pytest.approx(50 / 5)


def test_time_to_finish_divides_remaining_by_throughput(redis_client, settings):
    settings.LIVE_THROUGHPUT_WINDOW_SECONDS = 4
    now = MINUTE_START + 20.1
    record(redis_client, *((41, 5, 0, now - seconds) for seconds in range(1, 5)))

    result = rates.activity(campaign(), Progress(queued=900, in_flight=100, sent=20), now=now)

    assert result.throughput == pytest.approx(5.0)
    # it should count queued and in-flight recipients, not the sent ones
    assert result.seconds_to_finish == pytest.approx(1000 / 5.0)


def test_no_time_to_finish_without_recent_deliveries(redis_client, settings):
    settings.LIVE_THROUGHPUT_WINDOW_SECONDS = 5
    now = MINUTE_START + 40.0
    record(redis_client, (41, 30, 0, now - 6))

    result = rates.activity(campaign(), QUEUED_AND_IN_FLIGHT, now=now)

    assert result.sent_total == 30
    assert result.throughput is None
    assert result.seconds_to_finish is None


@pytest.mark.parametrize(
    "status",
    [Campaign.Status.PAUSED, Campaign.Status.COMPLETED, Campaign.Status.CANCELLED],
)
def test_no_throughput_unless_processing(redis_client, status):
    now = MINUTE_START + 40.0
    record(redis_client, (41, 30, 0, now - 1))

    result = rates.activity(campaign(status), QUEUED_AND_IN_FLIGHT, now=now)

    assert result.available
    assert result.throughput is None
    assert result.seconds_to_finish is None


# A campaign that stopped processing


def test_stopped_campaign_shows_minute_of_last_activity(redis_client):
    last = MINUTE_START + 5.5
    record(
        redis_client,
        (41, 4, 0, last - 60),  # just before the minute that ends at the last second
        (41, 6, 1, last - 59),
        (41, 3, 2, last),
    )

    stopped = campaign(Campaign.Status.COMPLETED)
    result = rates.activity(stopped, QUEUED_AND_IN_FLIGHT, now=last + 3600)

    assert not result.ends_now
    assert result.sent[0] == 6
    assert result.failed[0] == 1
    assert result.sent[-1] == 3
    assert result.failed[-1] == 2
    assert result.sent_total == 9


def test_last_second_survives_out_of_order_writes(redis_client):
    # A slower worker's pipeline arrives after a later second was recorded.
    record(redis_client, (41, 2, 0, MINUTE_START + 9))
    record(redis_client, (41, 5, 0, MINUTE_START + 7))

    result = rates.activity(campaign(Campaign.Status.PAUSED), QUEUED_AND_IN_FLIGHT)

    assert result.sent[-1] == 2
    assert result.sent[-3] == 5


def test_stopped_campaign_without_counts_shows_empty_chart(redis_client):
    result = rates.activity(campaign(Campaign.Status.CANCELLED), QUEUED_AND_IN_FLIGHT)

    assert result.available
    assert result.sent == (0,) * rates.CHART_SECONDS
    assert result.failed == (0,) * rates.CHART_SECONDS
    assert result.chart.total_path == ""


# Keys, TTLs and memory


def test_keys_expire_after_history(redis_client, settings, rate_prefix):
    settings.LIVE_RATE_HISTORY_SECONDS = 600
    record(
        redis_client,
        (41, 1, 0, MINUTE_START + 1),
        (41, 1, 1, MINUTE_START + 61),
        (41, 0, 1, MINUTE_START + 121),
    )

    keys = sorted(key.decode() for key in redis_client.scan_iter(f"{rate_prefix}:*"))

    # it should keep one hash per minute and the latest second
    assert keys == sorted(
        [
            rates.minute_key(41, MINUTE_START // 60),
            rates.minute_key(41, MINUTE_START // 60 + 1),
            rates.minute_key(41, MINUTE_START // 60 + 2),
            rates.last_second_key(41),
        ]
    )
    for key in keys:
        ttl = redis_client.ttl(key)
        assert 0 < ttl <= 600, key


def test_busy_minute_fits_one_hash(redis_client):
    record(redis_client, *((41, 50, 3, MINUTE_START + second) for second in range(60)))
    record(redis_client, *((41, 50, 3, MINUTE_START + second + 0.5) for second in range(60)))

    key = rates.minute_key(41, MINUTE_START // 60)

    assert redis_client.hlen(key) == 120
    assert int(redis_client.hget(key, "59s")) == 100
    assert int(redis_client.hget(key, "59f")) == 6


# Redis outage


def test_redis_outage_gives_unavailable_activity(settings, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    with caplog.at_level(logging.WARNING, logger="live.rates"):
        first = rates.activity(campaign(), QUEUED_AND_IN_FLIGHT)
        second = rates.activity(campaign(Campaign.Status.COMPLETED), QUEUED_AND_IN_FLIGHT)

    for result in (first, second):
        assert not result.available
        assert result.throughput is None
        assert result.seconds_to_finish is None
        assert result.sent == ()
    # it should log the outage once, not on every header render
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "reading live delivery rates failed" in warnings[0].getMessage()


def test_outage_is_logged_again_after_recovery(settings, caplog):
    reachable = settings.REDIS_URL
    unreachable = f"redis://127.0.0.1:{free_port()}/0"

    with caplog.at_level(logging.INFO, logger="live.rates"):
        settings.REDIS_URL = unreachable
        rates.activity(campaign(), QUEUED_AND_IN_FLIGHT)
        settings.REDIS_URL = reachable
        recovered = rates.activity(campaign(), QUEUED_AND_IN_FLIGHT)
        settings.REDIS_URL = unreachable
        rates.activity(campaign(), QUEUED_AND_IN_FLIGHT)

    assert recovered.available
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO, logging.WARNING]
    assert messages[1][1] == "live delivery rates available again"


# Chart geometry


def padded(*last: int) -> tuple[int, ...]:
    """A full window whose last seconds are `last`."""
    return (0,) * (rates.CHART_SECONDS - len(last)) + last


def test_chart_stacks_failed_on_sent():
    activity = rates.Activity(available=True, sent=padded(20, 40, 0), failed=padded(0, 0, 10))

    chart = activity.chart

    assert (chart.width, chart.height) == (240, 40)
    # Totals 20, 40 and 10 in columns 57 to 59, each 4 units wide.
    assert chart.total_path == "M228 40v-20h4v-20h4v30h4V40z"
    # Sent 20, 40 and 0: the path ends on the baseline.
    assert chart.sent_path == "M228 40v-20h4v-20h4v40z"


def test_chart_merges_equal_columns():
    activity = rates.Activity(available=True, sent=(5,) * 60, failed=(0,) * 60)

    assert activity.chart.sent_path == "M0 40v-40h240V40z"


def test_chart_draws_single_delivery_under_high_peak():
    activity = rates.Activity(available=True, sent=padded(1000, 1), failed=padded(0, 0))

    # it should round a nonzero count up to one unit, not down to nothing
    assert activity.chart.sent_path == "M232 40v-40h4v39h4V40z"


# The partial


class ActivityParser(HTMLParser):
    """Collects the partial's SVG attributes, path data and text."""

    def __init__(self) -> None:
        super().__init__()
        self.svg: dict[str, str | None] | None = None
        self.paths: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self.svg = attributes
        elif tag == "path":
            self.paths[attributes["class"] or ""] = attributes["d"] or ""
        for name in attributes:
            assert name != "style", f"inline style on <{tag}>"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def render(activity: rates.Activity, campaign_: Campaign) -> tuple[str, ActivityParser]:
    html = render_to_string(
        "campaigns/_activity.html", {"activity": activity, "campaign": campaign_}
    )
    parser = ActivityParser()
    parser.feed(html)
    parser.close()
    return html, parser


def busy_minute() -> rates.Activity:
    """60 busy seconds whose column heights change every second, the longest path data."""
    sent = tuple(1200 + 997 * (second % 2) + 13 * second for second in range(60))
    failed = tuple(40 + 31 * (second % 3) for second in range(60))
    return rates.Activity(
        available=True,
        sent=sent,
        failed=failed,
        throughput=1234.4,
        seconds_to_finish=200.0,
    )


def test_partial_shows_throughput_and_time_to_finish():
    html, parser = render(busy_minute(), campaign())
    text = "".join(parser.text)

    assert "Throughput" in text
    assert re.search(r"<dd data-throughput>1,234 messages/s</dd>", html)
    assert re.search(r"<dd data-time-to-finish>about 3 min</dd>", html)
    assert "Deliveries per second, last minute" in text


def test_partial_draws_svg_chart_with_label():
    activity = busy_minute()
    _, parser = render(activity, campaign())

    assert parser.svg is not None
    assert parser.svg["role"] == "img"
    assert parser.svg["viewbox"] == "0 0 240 40"
    label = parser.svg["aria-label"] or ""
    assert f"{activity.sent_total:,} sent" in label
    assert f"{activity.failed_total:,} failed" in label
    assert f"peak {activity.peak:,} per second" in label
    assert parser.paths == {
        "rate-failed": activity.chart.total_path,
        "rate-sent": activity.chart.sent_path,
    }
    # it should use integer coordinates only
    for data in parser.paths.values():
        assert re.fullmatch(r"[MhvVz0-9 -]+", data), data


def test_partial_leaves_out_campaign_name():
    hostile = campaign(name='A"><script>alert(1)</script>')

    html, parser = render(busy_minute(), hostile)

    # it should show no user content, so its size stays within the budget
    assert "script" not in html
    assert "alert" not in html
    assert parser.svg is not None
    assert (parser.svg["aria-label"] or "").startswith("Deliveries per second, last minute: ")


def test_partial_for_stopped_campaign():
    activity = rates.Activity(available=True, sent=padded(3), failed=padded(0), ends_now=False)

    html, parser = render(activity, campaign(Campaign.Status.COMPLETED))
    text = "".join(parser.text)

    assert "Deliveries per second, last minute of activity" in text
    assert re.search(r"<dd data-throughput>—</dd>", html)
    assert "data-time-to-finish" not in html


def test_partial_without_deliveries_has_no_paths():
    activity = rates.Activity(available=True, sent=padded(), failed=padded())

    _, parser = render(activity, campaign())

    assert parser.svg is not None
    assert parser.paths == {}
    assert "0 sent and 0 failed" in (parser.svg["aria-label"] or "")


def test_partial_when_rates_are_unavailable():
    html, parser = render(rates.UNAVAILABLE, campaign())
    text = "".join(parser.text)

    assert parser.svg is None
    assert "Live delivery rates are unavailable." in text
    assert re.search(r"<dd data-throughput>—</dd>", html)


def test_partial_fits_budget_for_busy_minute():
    html, parser = render(busy_minute(), campaign(pk=2**40))

    assert len(parser.paths["rate-sent"]) > 300, "every column of the busy minute should differ"
    assert len(html.encode()) <= 1500
