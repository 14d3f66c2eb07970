"""The suppression list: email addresses and phone numbers that are never sent to.

Entries are stored in the form that `Recipient.save()` stores contact details
(campaigns/normalization.py), so an entry matches the recipient rows it was
made from. Emails compare case-insensitively, as the recipients' unique index
does, and phone numbers compare in E.164.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from django.db import connection, models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.normalization import normalize_email, normalize_phone

# How many times `suppress` inserts again when the entry that blocked its
# insert was deleted before it could be read.
_SUPPRESS_ATTEMPTS = 3


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed through the link"
    OPERATOR = "operator", "Added by an operator"
    BOUNCED = "bounced", "Bounced"
    COMPLAINT = "complaint", "Spam complaint"


class Suppression(models.Model):
    """One email address or one phone number that no campaign of a workspace sends to."""

    Reason = SuppressionReason

    # No index of its own: the unique indexes start with workspace_id.
    workspace = models.ForeignKey(
        "accounts.Workspace",
        on_delete=models.CASCADE,
        related_name="suppressions",
        db_index=False,
    )
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The campaign whose unsubscribe link added the entry, when there was one.
    source_campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="suppressions",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(email__regex=r"\S") & Q(phone=""))
                | (Q(email="") & Q(phone__regex=r"\S")),
                name="suppression_email_xor_phone",
                violation_error_message="Enter an email address or a phone number, not both.",
            ),
            models.CheckConstraint(
                condition=Q(reason__in=SuppressionReason.values),
                name="suppression_reason_valid",
            ),
            models.UniqueConstraint(
                "workspace",
                Lower("email"),
                condition=~Q(email=""),
                name="suppression_workspace_email",
                violation_error_message="This email address is already on the suppression list.",
            ),
            models.UniqueConstraint(
                fields=["workspace", "phone"],
                condition=~Q(phone=""),
                name="suppression_workspace_phone",
                violation_error_message="This phone number is already on the suppression list.",
            ),
        ]

    def __str__(self) -> str:
        return self.email or self.phone

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = normalize_email(self.email)
        self.phone = normalize_phone(self.phone)
        super().save(*args, **kwargs)

    @property
    def address(self) -> str:
        """The email address or phone number, whichever the entry has."""
        return self.email or self.phone


class SuppressedAddresses(NamedTuple):
    """The given email addresses and phone numbers that are on the suppression list."""

    emails: set[str]
    phones: set[str]


def is_suppressed(email: str, phone: str, *, workspace_id: int) -> bool:
    """Return whether the email address or the phone number is on the workspace's list.

    Either may be empty. The values are normalised first, so "Ada@Example.COM "
    matches an entry for "ada@example.com".
    """
    found = suppressed_among(
        [email] if email else [], [phone] if phone else [], workspace_id=workspace_id
    )
    return bool(found.emails or found.phones)


def suppressed_among(
    emails: Iterable[str],
    phones: Iterable[str],
    *,
    workspace_id: int,
    normalized: bool = False,
) -> SuppressedAddresses:
    """Return which of `emails` and `phones` are on the suppression list of a workspace.

    The sets contain the values as given, not their normalised forms, so a
    caller can look up its own recipients' values in them. One query for the
    emails and one for the phone numbers, each served by its unique index.
    Empty values are never suppressed. Pass `normalized=True` for values
    read from recipients, which are stored normalised: normalising an email
    address costs tens of microseconds, which a dispatch would pay per
    recipient.
    """
    given_emails = [email for email in emails if email.strip()]
    phones_by_key: dict[str, list[str]] = {}
    for phone in phones:
        if phone.strip():
            key = phone if normalized else normalize_phone(phone)
            phones_by_key.setdefault(key, []).append(phone)

    found = SuppressedAddresses(set(), set())
    if given_emails:
        # PostgreSQL lowers both sides, so the comparison is the one that the
        # unique index on lower(email) makes, and the index serves it.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT v.given
                  FROM unnest(%s::text[], %s::text[]) AS v(given, normalized)
                 WHERE EXISTS (SELECT 1 FROM {Suppression._meta.db_table} AS s
                                WHERE s.workspace_id = %s
                                  AND lower(s.email) = lower(v.normalized) AND s.email <> '')
                """,
                [
                    given_emails,
                    given_emails
                    if normalized
                    else [normalize_email(email) for email in given_emails],
                    workspace_id,
                ],
            )
            found.emails.update(row[0] for row in cursor.fetchall())
    if phones_by_key:
        matched = Suppression.objects.filter(
            workspace_id=workspace_id, phone__in=list(phones_by_key)
        ).values_list("phone", flat=True)
        for key in matched:
            found.phones.update(phones_by_key[key])
    return found


def suppress(
    *,
    email: str = "",
    phone: str = "",
    reason: str,
    workspace_id: int,
    campaign_id: int | None = None,
) -> tuple[Suppression, bool]:
    """Add an email address or a phone number to a workspace's suppression list.

    Returns the entry and whether this call created it. An address that is
    already on the list keeps its entry, with its first reason and campaign,
    so calling this again is harmless. The insert is one
    `INSERT ... ON CONFLICT DO NOTHING`, so two requests at the same moment
    create one entry and neither fails. The entry records `campaign_id` as
    its source campaign only while that campaign exists, so a campaign
    deleted before or during the call leaves the source empty. Raises
    ValueError unless exactly one of `email` and `phone` is given.
    """
    email = normalize_email(email)
    phone = normalize_phone(phone)
    if bool(email) == bool(phone):
        raise ValueError("Give an email address or a phone number to suppress, not both.")
    if reason not in SuppressionReason.values:
        raise ValueError(f"{reason!r} is not a suppression reason.")

    table = Suppression._meta.db_table
    campaigns = Campaign._meta.db_table
    for _attempt in range(_SUPPRESS_ATTEMPTS):
        with transaction.atomic(), connection.cursor() as cursor:
            # The subquery reads the campaign in the same statement and locks
            # it with FOR KEY SHARE. A deletion that committed first makes it
            # return NULL. A deletion that locks the campaign row first, as
            # Campaign.delete_if_pending and the admin do, makes it wait and
            # then return NULL, or waits for this transaction and then clears
            # the reference (on_delete=SET_NULL). A campaign read in an
            # earlier statement could be deleted before this one commits, and
            # the deferred foreign key check would then fail the commit.
            cursor.execute(
                f"""
                INSERT INTO {table}
                       (workspace_id, email, phone, reason, created_at, source_campaign_id)
                VALUES (%s, %s, %s, %s, %s,
                        (SELECT id FROM {campaigns}
                          WHERE id = %s AND workspace_id = %s FOR KEY SHARE))
                ON CONFLICT DO NOTHING
                RETURNING id
                """,
                [workspace_id, email, phone, reason, timezone.now(), campaign_id, workspace_id],
            )
            row = cursor.fetchone()
        if row is not None:
            return Suppression.objects.get(pk=row[0]), True
        existing = _find(workspace_id, email, phone)
        if existing is not None:
            return existing, False
        # The entry that blocked the insert was deleted meanwhile: insert again.
    raise RuntimeError(f"Could not add {email or phone} to the suppression list.")


def _find(workspace_id: int, email: str, phone: str) -> Suppression | None:
    entries = Suppression.objects.filter(workspace_id=workspace_id)
    if email:
        return (
            entries.annotate(email_key=Lower("email"))
            .filter(email_key=Lower(Value(email)))
            .exclude(email="")
            .first()
        )
    return entries.filter(phone=phone).first()
