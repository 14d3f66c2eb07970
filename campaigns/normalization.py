"""Canonical forms of recipient contact details.

The form, the admin and the models all store values through these functions,
so that the database's uniqueness constraints compare like with like.
"""

from __future__ import annotations

import re

# Separators people type inside phone numbers. They carry no meaning, so
# "+1 (202) 555-0101" and "+12025550101" are the same number.
PHONE_SEPARATORS = re.compile(r"[\s\-().\u00a0]")
PHONE_PATTERN = re.compile(r"\+?[0-9]{6,15}")


def normalize_email(value: str) -> str:
    """Trim `value` and lower-case its domain; the local part keeps its case."""
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at:
        return value
    return f"{local}@{domain.lower()}"


def normalize_phone(value: str) -> str:
    """Trim `value` and remove separators, keeping a leading `+`."""
    return PHONE_SEPARATORS.sub("", value.strip())


def is_valid_phone(value: str) -> bool:
    """Check a normalized number: an optional `+` and 6 to 15 digits (E.164 allows 15)."""
    return PHONE_PATTERN.fullmatch(value) is not None
