"""Read configuration from the process environment and an optional `.env` file.

Variables already set in the environment win over the file, so `.env` only
fills gaps. `bin/setup` writes `.env` when it starts private PostgreSQL or
Redis instances, which lets `manage.py`, the worker and the tests find them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def load_dotenv(path: Path) -> None:
    """Copy `KEY=value` lines from `path` into `os.environ` where unset."""
    if not path.is_file():
        return
    for line_number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if key.startswith("export ") or key.startswith("export\t"):
            key = key[len("export") :].strip()
        if not sep or not key:
            raise ValueError(f"{path}:{line_number}: expected KEY=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off")


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> float:
    """Read a finite float. Raises ValueError when it is outside [minimum, maximum],
    or not above 0 with `positive`.

    The default is returned as given, without the range check.
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}={raw!r} is not a finite number")
    _check_range(name, raw, value, minimum, maximum, positive, "a number")
    return value


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Read an integer. Raises ValueError when it is outside [minimum, maximum].

    The default is returned as given, without the range check.
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    _check_range(name, raw, value, minimum, maximum, False, "an integer")
    return value


def _check_range(
    name: str,
    raw: str,
    value: float,
    minimum: float | None,
    maximum: float | None,
    positive: bool,
    kind: str,
) -> None:
    too_low = (minimum is not None and value < minimum) or (positive and value <= 0)
    too_high = maximum is not None and value > maximum
    if not (too_low or too_high):
        return
    if positive and maximum is not None:
        allowed = f"{kind} above 0 and at most {maximum}"
    elif positive:
        allowed = f"{kind} above 0"
    elif minimum is not None and maximum is not None:
        allowed = f"{kind} from {minimum} to {maximum}"
    elif minimum is not None:
        allowed = f"{kind} of at least {minimum}"
    else:
        allowed = f"{kind} of at most {maximum}"
    raise ValueError(f"{name}={raw!r} is out of range: expected {allowed}")


def require_at_least(name: str, value: float, lower_name: str, lower: float) -> None:
    """Raise ValueError unless setting `name` is at least setting `lower_name`."""
    if value < lower:
        raise ValueError(
            f"{name}={value} is less than {lower_name}={lower}: set {name} to at least {lower_name}"
        )


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: Iterable[str]) -> str:
    """Read one of `choices`, compared without surrounding spaces. Raises ValueError otherwise.

    The default is returned as given, without the check.
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    allowed = sorted(choices)
    value = raw.strip()
    if value not in allowed:
        raise ValueError(f"{name}={raw!r} is not a valid value: use one of {', '.join(allowed)}")
    return value


# A field name as RFC 9110 allows it, minus the rarely used symbols, so that
# it maps onto a CGI-style META key (HTTP_X_FORWARDED_PROTO) unambiguously.
_HEADER_NAME = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")


def env_header_name(name: str) -> str | None:
    """Read an HTTP header name such as X-Forwarded-Proto; None when unset or empty."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip()
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError(
            f"{name}={raw!r} is not an HTTP header name: use letters, digits and single "
            "hyphens, such as X-Forwarded-Proto"
        )
    return value
