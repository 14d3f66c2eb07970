"""Validation of the recipient rows of an API request.

The rules are the campaign form's and the CSV import's: each value is
cleaned by campaigns/normalization.py, a row needs an email address or a
phone number, and no two recipients of a campaign share an email address
(compared case-insensitively) or a phone number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db.models.functions import Lower

from api.schemas import RecipientIn
from campaigns.models import Campaign, Recipient
from campaigns.normalization import InvalidContact, clean_email, clean_name, clean_phone


@dataclass(frozen=True)
class RowError:
    row: int | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class CheckedRows:
    """The valid rows of a request, cleaned, and an error for each invalid one."""

    valid: list[Recipient] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def check_rows(rows: Sequence[RecipientIn], campaign: Campaign | None) -> CheckedRows:
    """Clean every row; `campaign` is the saved campaign that the rows join, or None.

    A row whose email address or phone number an earlier valid row, or a
    recipient already in `campaign`, has is invalid. Returns unsaved
    Recipient objects without a campaign.
    """
    checked = CheckedRows()
    cleaned: list[tuple[int, str, str, str]] = []
    for index, row in enumerate(rows):
        errors: list[RowError] = []
        name = _clean(clean_name, row.name, index, "name", errors)
        email = _clean(clean_email, row.email, index, "email", errors)
        phone = _clean(clean_phone, row.phone_number, index, "phone_number", errors)
        if not errors and not email and not phone:
            errors.append(RowError(index, None, "Enter an email address or a phone number."))
        if errors:
            checked.errors.extend(errors)
        else:
            cleaned.append((index, name, email, phone))

    taken_emails, taken_phones = _taken(campaign, cleaned)
    first_row_by_email: dict[str, int] = {}
    first_row_by_phone: dict[str, int] = {}
    for index, name, email, phone in cleaned:
        errors = []
        email_key = email.lower()
        if email and email_key in taken_emails:
            errors.append(RowError(index, "email", f"The campaign already has “{email}”."))
        elif email and email_key in first_row_by_email:
            errors.append(
                RowError(
                    index,
                    "email",
                    f"Duplicate email: row {first_row_by_email[email_key]} has it too.",
                )
            )
        if phone and phone in taken_phones:
            errors.append(RowError(index, "phone_number", f"The campaign already has {phone}."))
        elif phone and phone in first_row_by_phone:
            errors.append(
                RowError(
                    index,
                    "phone_number",
                    f"Duplicate phone number: row {first_row_by_phone[phone]} has it too.",
                )
            )
        if errors:
            checked.errors.extend(errors)
            continue
        if email:
            first_row_by_email[email_key] = index
        if phone:
            first_row_by_phone[phone] = index
        checked.valid.append(Recipient(name=name, email=email, phone_number=phone))
    checked.errors.sort(key=lambda error: error.row if error.row is not None else -1)
    return checked


def _clean(
    clean: Callable[[str], str], value: str, index: int, name: str, errors: list[RowError]
) -> str:
    try:
        return clean(value)
    except InvalidContact as exc:
        errors.append(RowError(index, name, str(exc)))
        return ""


def _taken(
    campaign: Campaign | None, cleaned: list[tuple[int, str, str, str]]
) -> tuple[set[str], set[str]]:
    """Return the lower-cased emails and the phone numbers among `cleaned` that
    the campaign's recipients already have."""
    if campaign is None or not cleaned:
        return set(), set()
    emails = {email.lower() for _, _, email, _ in cleaned if email}
    phones = {phone for _, _, _, phone in cleaned if phone}
    recipients = Recipient.objects.filter(campaign=campaign)
    taken_emails = set(
        recipients.annotate(email_key=Lower("email"))
        .filter(email_key__in=emails)
        .values_list("email_key", flat=True)
    )
    taken_phones = set(
        recipients.filter(phone_number__in=phones).values_list("phone_number", flat=True)
    )
    return taken_emails, taken_phones
