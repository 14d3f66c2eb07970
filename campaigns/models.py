"""Campaigns and their recipients.

Status changes happen only through the transition methods below. Each is one
conditional UPDATE that filters on the primary key and the expected current
status, so when two processes race, the row count shows which one won.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from campaigns.normalization import normalize_email, normalize_phone

# Failure reasons are shown in the recipients table; longer messages are cut.
FAILURE_REASON_MAX_LENGTH = 255


@dataclass(frozen=True)
class Progress:
    """Recipient counts of one campaign, by status."""

    queued: int = 0
    sent: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.sent + self.failed

    @property
    def processed(self) -> int:
        return self.sent + self.failed

    @property
    def percent(self) -> int:
        """Processed share of all recipients, rounded down so 100 means all done."""
        if self.total == 0:
            return 0
        return self.processed * 100 // self.total


class CampaignStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"


class RecipientStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class CampaignQuerySet(models.QuerySet["Campaign"]):
    def with_counts(self) -> CampaignQuerySet:
        """Annotate `sent_count`, `failed_count` and `recipient_count` (one grouped query)."""
        return self.annotate(
            recipient_count=Count("recipients"),
            sent_count=Count("recipients", filter=Q(recipients__status=RecipientStatus.SENT)),
            failed_count=Count("recipients", filter=Q(recipients__status=RecipientStatus.FAILED)),
        )


class Campaign(models.Model):
    Status = CampaignStatus

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CampaignStatus.values),
                name="campaign_status_valid",
            ),
            models.CheckConstraint(condition=Q(name__regex=r"\S"), name="campaign_name_not_blank"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("campaigns:detail", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        """Only a pending campaign can change; dispatch freezes its recipients."""
        return self.status == self.Status.PENDING

    @property
    def dom_id(self) -> str:
        return f"campaign_{self.pk}"

    def progress(self) -> Progress:
        """Count recipients by status with one query on the (campaign, status) index."""
        rows = self.recipients.values("status").annotate(count=Count("id")).order_by()
        counts = {row["status"]: row["count"] for row in rows}
        return Progress(
            queued=counts.get(Recipient.Status.QUEUED, 0),
            sent=counts.get(Recipient.Status.SENT, 0),
            failed=counts.get(Recipient.Status.FAILED, 0),
        )

    # Transitions. Each returns True when this call made the change.

    def start(self) -> bool:
        """Move `pending → processing`; refused for a campaign without recipients."""
        now = timezone.now()
        has_recipients = Exists(Recipient.objects.filter(campaign=OuterRef("pk")))
        changed = Campaign.objects.filter(
            has_recipients, pk=self.pk, status=self.Status.PENDING
        ).update(status=self.Status.PROCESSING, started_at=now)
        if changed:
            self.status, self.started_at = self.Status.PROCESSING, now
        return changed == 1

    def complete(self) -> bool:
        """Move `processing → completed` once no recipient is queued."""
        now = timezone.now()
        has_queued = Exists(
            Recipient.objects.filter(campaign=OuterRef("pk"), status=Recipient.Status.QUEUED)
        )
        changed = Campaign.objects.filter(
            ~has_queued, pk=self.pk, status=self.Status.PROCESSING
        ).update(status=self.Status.COMPLETED, completed_at=now)
        if changed:
            self.status, self.completed_at = self.Status.COMPLETED, now
        return changed == 1

    def delete_if_pending(self) -> bool:
        """Delete the campaign and its recipients unless it was dispatched meanwhile.

        The row lock makes a concurrent `start()` wait, so a campaign is never
        deleted while a worker begins to deliver it.
        """
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().filter(
                pk=self.pk, status=self.Status.PENDING
            )
            if not locked.exists():
                return False
            locked.delete()
        return True


class Recipient(models.Model):
    Status = RecipientStatus

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)
    phone_number = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.CharField(max_length=FAILURE_REASON_MAX_LENGTH, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Progress counts and "next queued recipient" look-ups.
            models.Index(fields=["campaign", "status"], name="recipient_campaign_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RecipientStatus.values),
                name="recipient_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(email__regex=r"\S") | Q(phone_number__regex=r"\S"),
                name="recipient_has_email_or_phone",
            ),
            # Empty values are excluded so that many recipients may lack an
            # email (or a phone number) in the same campaign.
            models.UniqueConstraint(
                "campaign",
                Lower("email"),
                condition=~Q(email=""),
                name="recipient_unique_email_per_campaign",
            ),
            models.UniqueConstraint(
                fields=["campaign", "phone_number"],
                condition=~Q(phone_number=""),
                name="recipient_unique_phone_per_campaign",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone_number

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name = self.name.strip()
        self.email = normalize_email(self.email)
        self.phone_number = normalize_phone(self.phone_number)
        super().save(*args, **kwargs)

    @property
    def dom_id(self) -> str:
        return f"recipient_{self.pk}"

    # Transitions. Each returns True when this call made the change.

    def mark_sent(self) -> bool:
        """Move `queued → sent` and record when."""
        return self._finish(self.Status.SENT, reason="")

    def mark_failed(self, reason: str) -> bool:
        """Move `queued → failed` with a short reason, cut to the column's length."""
        return self._finish(self.Status.FAILED, reason=reason[:FAILURE_REASON_MAX_LENGTH])

    def _finish(self, status: RecipientStatus, reason: str) -> bool:
        now = timezone.now()
        changed = Recipient.objects.filter(pk=self.pk, status=self.Status.QUEUED).update(
            status=status, failure_reason=reason, processed_at=now
        )
        if changed:
            self.status, self.failure_reason, self.processed_at = status, reason, now
        return changed == 1
