"""The template filters that the campaign header uses for rates and the time to finish."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from campaigns.templatetags.rates import per_second, rate, thousands, time_to_finish


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12.5, "12.5"),
        (12.0, "12"),
        (0.25, "0.25"),
        (2.25, "2.25"),
        (50, "50"),
        (1000000.0, "1000000"),
        # Two decimals at most.
        (12.345, "12.35"),
        (0.1 + 0.2, "0.3"),
        (12.001, "12"),
        # Below 0.01: two significant digits, so a positive rate is never 0.
        (0.001, "0.001"),
        (0.0012345, "0.0012"),
        (0.00999, "0.01"),
        (0.0, "0"),
    ],
)
def test_rate_drops_trailing_zeros(value: float, text: str) -> None:
    assert rate(value) == text


def test_rate_loads_in_templates() -> None:
    template = Template("{% load rates %}{{ value|rate }} messages/s")

    assert template.render(Context({"value": 12.5})) == "12.5 messages/s"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1234.4, "1,234"),
        (1234567.0, "1,234,567"),
        (12.5, "12"),
        (10.0, "10"),
        (9.96, "9.96"),
        (2.4, "2.4"),
        (0.2, "0.2"),
        # One delivery in a 60-second window still reads as a rate.
        (1 / 60, "0.02"),
        (0.0, "0"),
    ],
)
def test_per_second_rounds_large_rates(value: float, text: str) -> None:
    assert per_second(value) == text


def test_thousands_separates_groups() -> None:
    assert thousands(0) == "0"
    assert thousands(999) == "999"
    assert thousands(1234567) == "1,234,567"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (0.0, "under a minute"),
        (59.9, "under a minute"),
        (60.0, "about 1 min"),
        (89.0, "about 1 min"),
        (200.0, "about 3 min"),
        # 59.5 minutes round to an hour.
        (3570.0, "about 1 h"),
        (3600 + 5 * 60, "about 1 h 5 min"),
        (23 * 3600 + 59 * 60, "about 23 h 59 min"),
        (24 * 3600 - 20, "about 1 day"),
        (3 * 86400 + 3600, "about 3 days"),
    ],
)
def test_time_to_finish_words_estimate(seconds: float | None, text: str) -> None:
    assert time_to_finish(seconds) == text
