"""The `rate` template filter that the campaign header uses for rate limits."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from campaigns.templatetags.rates import rate


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
