"""Template filters for rates in messages per second and for the time to finish."""

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


@register.filter
def per_second(value: float) -> str:
    """Format a throughput in messages per second: 1,234, 12, 2.4, 0.25.

    Rates of 10 and more are whole numbers, and smaller ones are formatted as
    `rate` formats them, so a low but positive rate never reads as 0.
    """
    if abs(value) >= 10:
        return f"{round(value):,}"
    return rate(value)


@register.filter
def thousands(value: int) -> str:
    """Format a count with thousands separators: 1,234,567."""
    return f"{value:,}"


@register.filter
def time_to_finish(seconds: float | None) -> str:
    """Word an estimated time to finish: "under a minute", "about 3 min", "about 2 h 5 min",
    "about 3 days"; "" for None.
    """
    if seconds is None:
        return ""
    minutes = round(seconds / 60)
    if seconds < 60:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} min"
    if minutes < 24 * 60:
        hours, minutes = divmod(minutes, 60)
        return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
    days = round(seconds / 86400)
    return f"about {days} day" if days == 1 else f"about {days} days"
