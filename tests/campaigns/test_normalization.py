"""Canonical forms of email addresses and phone numbers."""

from __future__ import annotations

import pytest

from campaigns.normalization import is_valid_phone, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  ada@example.com \t", "ada@example.com"),
        ("Ada@Example.COM", "Ada@example.com"),
        ("ADA.Lovelace+News@MAIL.Example.org", "ADA.Lovelace+News@mail.example.org"),
        # Only the last @ starts the domain.
        ('"a@B"@Example.COM', '"a@B"@example.com'),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalize_email(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


def test_normalize_email_without_at_only_trims() -> None:
    assert normalize_email(" Not-An-Email ") == "Not-An-Email"


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("+12025550101", "+12025550101"),
        ("+1 202 555 0101", "+12025550101"),
        ("202-555-0101", "2025550101"),
        ("202.555.0101", "2025550101"),
        ("+1 (202) 555-0101", "+12025550101"),
        ("+1\u00a0202\u00a0555\u00a00101", "+12025550101"),
        ("\t+44 20 7946 0958\n", "+442079460958"),
        ("", ""),
        ("  ", ""),
    ],
)
def test_normalize_phone(raw: str, normalized: str) -> None:
    assert normalize_phone(raw) == normalized


def test_normalize_phone_keeps_other_characters() -> None:
    # Letters and a + after the first digit are not separators, so they stay
    # for is_valid_phone to reject.
    assert normalize_phone("202 555 CALL") == "202555CALL"
    assert normalize_phone("1+202") == "1+202"


@pytest.mark.parametrize(
    "phone",
    [
        "123456",
        "+123456",
        "123456789012345",
        "+123456789012345",
        "+12025550101",
        "0044207946095",
    ],
)
def test_valid_phone_accepted(phone: str) -> None:
    assert is_valid_phone(phone) is True


@pytest.mark.parametrize(
    "phone",
    [
        "",
        "+",
        "12345",
        "+12345",
        "1234567890123456",
        "+1234567890123456",
        "++12025550101",
        "1202+5550101",
        "12025550101+",
        "202555CALL",
        "+1 202 555 0101",
        "+1-202-555-0101",
        # Full-width digits, which match \d but not [0-9].
        "".join(chr(0xFF10 + int(digit)) for digit in "12025550101"),
    ],
    ids=repr,
)
def test_invalid_phone_rejected(phone: str) -> None:
    assert is_valid_phone(phone) is False


def test_phone_with_trailing_newline_rejected() -> None:
    # A `$` anchor also matches before a final newline, so a pattern that ends
    # in `$` accepts this value unless the whole string must match.
    assert is_valid_phone("12025550101\n") is False
