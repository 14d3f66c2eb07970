"""Template filters for rate limits, in messages per second."""

from __future__ import annotations

import math

from django import template

register = template.Library()


@register.filter
def rate(value: float) -> str:
    """Format a rate without trailing zeros: 12.5, 12, 0.25.

    Rates are rounded to two decimals, except that a positive rate below
    0.01 keeps two significant digits (0.0012), so it never reads as 0.
    """
    decimals = 2
    if 0 < abs(value) < 0.01:
        decimals = 1 - math.floor(math.log10(abs(value)))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
