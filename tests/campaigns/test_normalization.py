"""Validation and canonical forms of names, email addresses and phone numbers.

The form and the CSV import share these functions, so these cases hold for both.
"""

from __future__ import annotations

import pytest

from campaigns.normalization import (
    InvalidContact,
    clean_email,
    clean_name,
    clean_phone,
    clean_text,
    normalize_email,
    normalize_phone,
)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  ada@example.com \t", "ada@example.com"),
        ("Ada@Example.COM", "Ada@example.com"),
        ("ADA.Lovelace+News@MAIL.Example.org", "ADA.Lovelace+News@mail.example.org"),
        # Internationalised domains are kept in Unicode, lower-cased.
        ("juergen@Bücher.DE", "juergen@bücher.de"),
        ("user@xn--bcher-kva.de", "user@bücher.de"),
        # Invisible characters that copying leaves are removed first.
        ("\u200bada@example.com\u00a0", "ada@example.com"),
        ("\ufeffada@exam\u200dple.com", "ada@example.com"),
        ("", ""),
        ("   ", ""),
        ("\u200b", ""),
    ],
)
def test_clean_email(raw: str, cleaned: str) -> None:
    assert clean_email(raw) == cleaned


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("not-an-email", "@-sign"),
        ("two@@example.com", "@-sign"),
        ("ada@localhost", "period"),
        ("ada@example", "period"),
        ("ada lovelace@example.com", "invalid characters"),
        ("ada@exa mple.com", "invalid characters"),
        ("ada@.example.com", "period"),
        ("a" * 250 + "@example.com", "too long"),
    ],
)
def test_clean_email_rejects_with_a_reason(raw: str, words: str) -> None:
    with pytest.raises(InvalidContact) as caught:
        clean_email(raw)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("zoë@example.com", "“ë” is not"),
        ("jürgen@Bücher.DE", "“ü” is not"),
        ("søren.ñ@example.com", "“ø” and “ñ” are not"),
    ],
)
def test_clean_email_rejects_non_ascii_local_part(raw: str, named: str) -> None:
    with pytest.raises(InvalidContact) as caught:
        clean_email(raw)

    message = str(caught.value)
    assert message.startswith(f"“{raw}” cannot be used")
    assert "the characters before the @ must be ASCII" in message
    assert named in message


def test_normalize_email_keeps_non_ascii_local_part() -> None:
    assert normalize_email(" zoë@Example.COM ") == "zoë@example.com"


@pytest.mark.parametrize(
    ("raw", "region", "cleaned"),
    [
        ("+12025550101", "US", "+12025550101"),
        ("+1 202 555 0101", "US", "+12025550101"),
        ("202-555-0101", "US", "+12025550101"),
        ("(202) 555.0101", "US", "+12025550101"),
        ("+1\u00a0202\u00a0555\u00a00101", "US", "+12025550101"),
        ("\u200b+1 202 555 0101\u200b", "US", "+12025550101"),
        # National numbers read in the default region.
        ("07911 123456", "GB", "+447911123456"),
        ("0044 7911 123456", "GB", "+447911123456"),
        ("030 1234567", "DE", "+49301234567"),
        # An international number is the same whatever the default region.
        ("+44 7911 123456", "US", "+447911123456"),
        # A lost leading zero that changes nothing: the national number without
        # its trunk prefix is the same number.
        ("7911123456", "GB", "+447911123456"),
        # A lost leading + is unambiguous once the digits are no national number.
        ("447911123456", "US", "+447911123456"),
        ("", "US", ""),
        ("   ", "US", ""),
    ],
)
def test_clean_phone(raw: str, region: str, cleaned: str) -> None:
    assert clean_phone(raw, region) == cleaned


@pytest.mark.parametrize(
    ("raw", "region", "words"),
    [
        # Spreadsheet damage is named, not guessed around.
        ("4.47700E+11", "GB", "scientific notation"),
        ("4,47912E+11", "GB", "scientific notation"),
        ("447911123456.0", "GB", "decimal number"),
        ("#N/A", "GB", "spreadsheet error"),
        ("#####", "GB", "spreadsheet error"),
        # Italian landlines keep their 0 after the country code, so without it
        # the digits are no valid number, and with it they are.
        ("612345678", "IT", "leading 0"),
        ("+1 202 555 0101 ext. 12", "US", "extension"),
        ("202 555 CALL", "US", "not a phone number"),
        ("1+202", "US", "not a phone number"),
        ("12345", "US", "not a valid phone number"),
        ("+1 555 999 0001", "US", "not a valid phone number"),
        ("1" * 70, "US", "too long"),
    ],
)
def test_clean_phone_rejects_with_a_reason(raw: str, region: str, words: str) -> None:
    with pytest.raises(InvalidContact) as caught:
        clean_phone(raw, region)
    assert words in str(caught.value)


def test_clean_phone_uses_the_default_region(settings) -> None:
    settings.PHONE_DEFAULT_REGION = "GB"
    assert clean_phone("07911 123456") == "+447911123456"
    settings.PHONE_DEFAULT_REGION = "US"
    with pytest.raises(InvalidContact):
        clean_phone("07911 123456")


def test_clean_name_removes_invisible_characters_and_repeated_spaces() -> None:
    assert clean_name("  Ada\u200b  \u00a0Lovelace\n") == "Ada Lovelace"
    assert clean_name("Grace\tHopper") == "Grace Hopper"
    assert clean_name("") == ""


def test_clean_name_rejects_a_name_too_long() -> None:
    with pytest.raises(InvalidContact, match="201 characters"):
        clean_name("x" * 201)


def test_clean_text_removes_control_characters() -> None:
    assert clean_text("Ada\x00 Lovelace\x07") == "Ada Lovelace"


def test_normalize_keeps_invalid_values_merely_trimmed() -> None:
    # Recipient.save() applies these; they never reject.
    assert normalize_email(" Not-An-Email ") == "Not-An-Email"
    assert normalize_email(" bad@@Example.COM ") == "bad@@example.com"
    assert normalize_phone(" +1 (555) 999-0001 ") == "+15559990001"
    assert normalize_phone("+1 202 555 0101") == "+12025550101"
    assert normalize_email("Ada@Example.COM") == "Ada@example.com"
