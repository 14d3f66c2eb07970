"""Recipient imports: an uploaded CSV file, its column mapping, its progress and its report.

An import goes `mapping → queued → running → completed | failed`, or ends
`cancelled` from any of the first three. Every change of status is one
conditional UPDATE (see `RecipientImport.transition`), so a job, the sweep
and a user's click never overwrite one another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign


class ImportStatus(models.TextChoices):
    MAPPING = "mapping", "Waiting for the column mapping"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# Imports that will still write recipients: a campaign with one cannot be dispatched.
ACTIVE_IMPORT_STATUSES = (ImportStatus.QUEUED, ImportStatus.RUNNING)


class RecipientImport(models.Model):
    Status = ImportStatus

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="imports")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.MAPPING)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    # The upload: its name on the user's machine, and where it waits in IMPORT_FILES_DIR.
    file_name = models.CharField(max_length=255)
    stored_name = models.CharField(max_length=100, unique=True)
    file_size = models.BigIntegerField()

    # How to read it, detected at upload (imports/reader.py).
    encoding = models.CharField(max_length=20)
    delimiter = models.CharField(max_length=1)
    column_titles = models.JSONField(default=list)
    sample_rows = models.JSONField(default=list)

    # The mapping the user confirmed: column positions (from 0), or None.
    has_header = models.BooleanField(default=True)
    name_column = models.PositiveSmallIntegerField(null=True, blank=True)
    first_name_column = models.PositiveSmallIntegerField(null=True, blank=True)
    last_name_column = models.PositiveSmallIntegerField(null=True, blank=True)
    email_column = models.PositiveSmallIntegerField(null=True, blank=True)
    phone_column = models.PositiveSmallIntegerField(null=True, blank=True)
    phone_region = models.CharField(max_length=2)

    # Progress while running; the final figures once completed. Rows are data
    # rows: the header and blank lines do not count.
    bytes_read = models.BigIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    rows_valid = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    # Set when the import completes: valid rows added, and those skipped as duplicates.
    rows_added = models.PositiveIntegerField(default=0)
    rows_duplicate = models.PositiveIntegerField(default=0)

    error = models.TextField(blank=True)
    # How many times a job started on it; the sweep gives up after IMPORT_MAX_ATTEMPTS.
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ImportStatus.values), name="import_status_valid"
            ),
            # One import at a time writes into a campaign, so two never
            # compete for its rows or for the machine's cores.
            models.UniqueConstraint(
                fields=["campaign"],
                condition=Q(status__in=["queued", "running"]),
                name="import_one_active_per_campaign",
            ),
            models.CheckConstraint(
                condition=Q(status="mapping")
                | Q(email_column__isnull=False)
                | Q(phone_column__isnull=False),
                name="import_maps_email_or_phone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} into campaign {self.campaign_id}"

    def get_absolute_url(self) -> str:
        return reverse("imports:detail", args=[self.campaign_id, self.pk])

    @property
    def dom_id(self) -> str:
        return f"import_{self.pk}"

    @property
    def path(self) -> Path:
        return settings.IMPORT_FILES_DIR / self.stored_name

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_IMPORT_STATUSES

    @property
    def percent_read(self) -> int:
        """Share of the file read so far, rounded down; 100 once it is all read."""
        if self.status == self.Status.COMPLETED or self.file_size <= 0:
            return 100
        return min(100, self.bytes_read * 100 // self.file_size)

    @property
    def rows_reported(self) -> int:
        """Rows in the report: invalid ones and skipped duplicates."""
        return self.rows_invalid + self.rows_duplicate

    def mapping(self) -> dict[str, int]:
        """Return the confirmed mapping as {field: column}, without unmapped fields."""
        columns = {
            "name": self.name_column,
            "first_name": self.first_name_column,
            "last_name": self.last_name_column,
            "email": self.email_column,
            "phone": self.phone_column,
        }
        return {field: column for field, column in columns.items() if column is not None}

    def transition(self, sources: tuple[str, ...] | list[str], target: str, **fields: Any) -> bool:
        """Move from one of `sources` to `target` in one conditional UPDATE; returns
        whether this call made the change, and refreshes the instance when it did."""
        changed = RecipientImport.objects.filter(pk=self.pk, status__in=sources).update(
            status=target, **fields
        )
        if changed:
            self.refresh_from_db()
        return changed == 1


class ImportIssue(models.Model):
    """A row of the file that was not added, with the reason in plain words."""

    class Kind(models.TextChoices):
        INVALID = "invalid", "Invalid"
        DUPLICATE = "duplicate", "Duplicate"

    recipient_import = models.ForeignKey(
        RecipientImport, on_delete=models.CASCADE, related_name="issues", db_index=False
    )
    line = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The values as the file had them.
    name = models.TextField(blank=True)
    email = models.TextField(blank=True)
    phone = models.TextField(blank=True)
    reason = models.TextField()

    class Meta:
        ordering = ["recipient_import", "line", "id"]
        indexes = [models.Index(fields=["recipient_import", "line"], name="import_issue_line")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"
