"""Validation and canonical forms of recipient names, email addresses and phone numbers.

The form, the CSV import and the admin all clean values through `clean_name`,
`clean_email` and `clean_phone`, so every path accepts and rejects the same
values and stores them in the same form: the database's uniqueness
constraints then compare like with like. Each raises `InvalidContact` with a
message in plain words.

`Recipient.save()` applies the lenient `normalize_*` functions, which never
reject: they canonicalise what validation would accept and leave anything
else merely trimmed.
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from django.conf import settings
from email_validator import EmailNotValidError, validate_email

NAME_MAX_LENGTH = 200
# Longer input is never a phone number, and parsing it would waste time.
PHONE_INPUT_MAX_LENGTH = 64

# Characters that show as nothing but make two values differ: zero-width
# spaces and joiners, the word joiner, byte-order marks, soft hyphens and
# the bidirectional marks that copying from web pages or chat tools leaves.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
        "\u2066\u2067\u2068\u2069\u180e",
    ),
    None,
)
# Spaces that are not the ordinary one (non-breaking, narrow, figure, ideographic).
_SPACES = dict.fromkeys(map(ord, "\u00a0\u202f\u2007\u2009\u200a\u3000\t\r\n\v\f"), " ")
_CLEAN_TABLE = str.maketrans({**_INVISIBLE, **_SPACES})
_RUNS_OF_SPACES = re.compile(r" {2,}")
# C0 and C1 control characters. C1 ones appear when Windows-1252 bytes are read as Latin-1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Separators people type inside phone numbers. They carry no meaning, so
# "+1 (202) 555-0101" and "+12025550101" are the same number.
_PHONE_SEPARATORS = re.compile(r"[\s\-().\u00a0/]")
_PHONE_CHARACTERS = re.compile(r"\+?[0-9\s\-()./]+")
_DIGITS = re.compile(r"[0-9]+")
# Long numbers as a spreadsheet shows them in a cell formatted as a number.
_SCIENTIFIC = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?[eE][+-]?[0-9]+")
_DECIMAL = re.compile(r"\+?[0-9]+[.,]0+")
_SPREADSHEET_ERROR = re.compile(r"#+|#(?:N/A|VALUE!|REF!|NAME\?|NUM!|DIV/0!|NULL!|SPILL!)")
_EXTENSION = re.compile(r"(?:ext\.?|extension|x|#)\s*[0-9]+\s*$", re.IGNORECASE)


class InvalidContact(ValueError):
    """A value that cannot be stored. `str(exc)` gives the reason in plain words."""


def clean_text(value: str) -> str:
    """Remove invisible characters, turn other spaces into plain ones and trim."""
    if value.isascii() and value.isprintable():
        return value.strip()
    return _CONTROL.sub("", value.translate(_CLEAN_TABLE)).strip()


def clean_name(value: str) -> str:
    """Return the name without invisible characters and with single spaces."""
    name = _RUNS_OF_SPACES.sub(" ", clean_text(value))
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidContact(
            f"The name is {len(name)} characters long; at most {NAME_MAX_LENGTH} fit."
        )
    return name


def clean_email(value: str) -> str:
    """Validate an email address; return it trimmed with a lower-case domain, or "".

    The check is syntax only (no DNS look-up). Internationalised domains are
    accepted and stored in their Unicode form. The local part must be ASCII,
    because an address with other characters before the @ can only be sent
    with SMTPUTF8, which Django's SMTP backend (6.1) does not use: it raises
    ValueError for such an address.
    """
    email = clean_text(value)
    if not email:
        return ""
    try:
        validated = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidContact(f"“{email}” is not a valid email address. {exc}") from None
    if not validated.local_part.isascii():
        raise InvalidContact(_non_ascii_local_part(email, validated.local_part))
    return validated.normalized


def _non_ascii_local_part(email: str, local_part: str) -> str:
    others = [f"“{char}”" for char in dict.fromkeys(local_part) if not char.isascii()]
    if len(others) == 1:
        listed = f"{others[0]} is"
    else:
        listed = f"{', '.join(others[:-1])} and {others[-1]} are"
    return (
        f"“{email}” cannot be used: the characters before the @ must be ASCII; {listed} not. "
        "Sending to such an address needs SMTPUTF8, which this app does not use. "
        "Non-ASCII domains, after the @, are accepted."
    )


def clean_address(value: str, region: str | None = None) -> tuple[str, str]:
    """Clean one typed address: an email address when it contains "@", else a phone number.

    Returns (email, phone), one of them "". Raises InvalidContact as
    clean_email and clean_phone do.
    """
    if "@" in value:
        return clean_email(value), ""
    return "", clean_phone(value, region)


def clean_phone(value: str, region: str | None = None) -> str:
    """Validate a phone number; return it in E.164 (such as +447911123456), or "".

    A number without a country code is read as one of `region` (default:
    PHONE_DEFAULT_REGION). Damage that spreadsheets do to numbers, such as
    scientific notation or a lost leading zero, is named in the error rather
    than guessed around.
    """
    text = clean_text(value)
    if not text:
        return ""
    region = region or settings.PHONE_DEFAULT_REGION
    if len(text) > PHONE_INPUT_MAX_LENGTH:
        raise InvalidContact(f"This is {len(text)} characters long, too long for a phone number.")
    if _SCIENTIFIC.fullmatch(text):
        raise InvalidContact(
            f"“{text}” is in scientific notation: a spreadsheet stored the phone number as a "
            "number and rounded it, so digits are lost. Format the column as text, enter the "
            "numbers again and export the file again."
        )
    if _DECIMAL.fullmatch(text):
        raise InvalidContact(
            f"“{text}” was stored as a decimal number by a spreadsheet, which also drops a "
            "leading + or 0. Format the column as text and export the file again."
        )
    if _SPREADSHEET_ERROR.fullmatch(text):
        raise InvalidContact(
            f"“{text}” is a spreadsheet error or a column too narrow to show its value, "
            "not a phone number."
        )
    if _EXTENSION.search(text):
        raise InvalidContact(
            f"“{text}” has an extension, and an extension cannot receive messages. "
            "Remove it, or use a direct number."
        )
    if not _PHONE_CHARACTERS.fullmatch(text):
        raise InvalidContact(
            f"“{text}” is not a phone number: use digits, optionally with spaces, dashes, dots "
            "or parentheses, and a leading + with the country code."
        )
    number = _valid_e164(text, region)
    if number is not None:
        return number
    if _DIGITS.fullmatch(text) and not text.startswith("0"):
        return _diagnose_bare_digits(text, region)
    raise InvalidContact(_invalid_message(text, region))


def _diagnose_bare_digits(digits: str, region: str) -> str:
    """Explain, or resolve, a bare run of digits that is no valid number of `region`.

    Spreadsheets store numbers typed into cells as numbers, which drops a
    leading 0 (national numbers) and a leading + (international ones). With
    the 0 put back the digits may be a valid national number; with the + put
    back, a valid international one. Only the second is accepted: it is the
    one reading in which the digits start with a country code. A lost 0 is
    reported, because guessing it would risk sending to a different person.
    """
    with_zero = _valid_e164("0" + digits, region)
    with_plus = _valid_e164("+" + digits, region)
    if with_zero and with_plus and with_zero != with_plus:
        raise InvalidContact(
            f"“{digits}” has lost its leading 0 or its leading +, as spreadsheets do: it could "
            f"be {with_zero} or {with_plus}. Write it with + and the country code."
        )
    if with_zero:
        raise InvalidContact(
            f"“{digits}” is not a valid number, but “0{digits}” is: a spreadsheet probably "
            "removed the leading 0. Format the column as text and check the numbers."
        )
    if with_plus:
        return with_plus
    raise InvalidContact(_invalid_message(digits, region))


def _invalid_message(text: str, region: str) -> str:
    return (
        f"“{text}” is not a valid phone number (numbers without a country code are read as "
        f"{region} numbers). Write numbers from other countries with + and the country code."
    )


def _valid_e164(text: str, region: str) -> str | None:
    """Return `text` in E.164 when it parses as a valid number, else None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@cache
def phone_regions() -> list[tuple[str, str]]:
    """Return (region code, label) pairs for every region that phone numbers can default to.

    Labels give the code and the calling code, such as "GB (+44)". Country
    names would need libphonenumber's geocoding data, whose import takes
    about 4 s.
    """
    regions = []
    for code in sorted(phonenumbers.SUPPORTED_REGIONS):
        calling_code = phonenumbers.country_code_for_region(code)
        regions.append((code, f"{code} (+{calling_code})"))
    return regions


def is_phone_region(code: str) -> bool:
    return code in phonenumbers.SUPPORTED_REGIONS


def normalize_email(value: str) -> str:
    """Return the stored form of an email address without judging it.

    A valid address comes back as `clean_email` returns it; anything else is
    only trimmed, with its domain lower-cased.
    """
    try:
        return clean_email(value)
    except InvalidContact:
        value = clean_text(value)
        local, at, domain = value.rpartition("@")
        return f"{local}@{domain.lower()}" if at else value


def normalize_phone(value: str) -> str:
    """Return the stored form of a phone number without judging it.

    A valid number comes back in E.164; anything else loses only its
    separators.
    """
    try:
        return clean_phone(value)
    except InvalidContact:
        return _PHONE_SEPARATORS.sub("", clean_text(value))
