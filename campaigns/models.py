"""Campaigns and their recipients.

Status changes happen only through the transition methods below. Each is one
conditional UPDATE that filters on the primary key and the expected current
status, so when two processes race, the row count shows which one won.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from campaigns.content import (
    missing_content,
    missing_email_parts,
    validate_html_template,
    validate_text_template,
)
from campaigns.normalization import normalize_email, normalize_phone

# Failure reasons are shown in the recipients table; longer messages are cut.
FAILURE_REASON_MAX_LENGTH = 255

CAMPAIGN_NAME_MAX_LENGTH = 200
EMAIL_SUBJECT_MAX_LENGTH = 200

# The suffix that `copy_name` adds: " (copy)" for the first copy, then
# " (copy 2)", " (copy 3)" and so on for a copy of a copy.
_COPY_SUFFIX = re.compile(r" \(copy(?: (?P<number>[1-9][0-9]{0,8}))?\)$")


def copy_name(name: str) -> str:
    """Name the duplicate of a campaign named `name`.

    "Launch" becomes "Launch (copy)", "Launch (copy)" becomes "Launch (copy 2)"
    and "Launch (copy 2)" becomes "Launch (copy 3)". The base name is cut so
    that the result fits CAMPAIGN_NAME_MAX_LENGTH.
    """
    base = name.strip()
    number = 1
    match = _COPY_SUFFIX.search(base)
    if match and match.start() > 0:
        base = base[: match.start()]
        number = int(match.group("number") or 1) + 1
    suffix = " (copy)" if number == 1 else f" (copy {number})"
    base = base[: CAMPAIGN_NAME_MAX_LENGTH - len(suffix)].rstrip()
    return base + suffix


@dataclass(frozen=True)
class Progress:
    """Recipient counts of one campaign, by status."""

    queued: int = 0
    in_flight: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    suppressed: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.in_flight + self.processed

    def of(self, status: str) -> int:
        """Recipients with `status`, or all of them when `status` is empty."""
        return getattr(self, RecipientStatus(status).value) if status else self.total

    @property
    def processed(self) -> int:
        """Recipients with a final status."""
        return self.sent + self.failed + self.cancelled + self.suppressed

    @property
    def percent(self) -> int:
        """Processed share of all recipients, rounded down so 100 means all done."""
        if self.total == 0:
            return 0
        return self.processed * 100 // self.total


class CampaignStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class RecipientStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    IN_FLIGHT = "in_flight", "In flight"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Not sent because the address is on the suppression list. The failure
    # reason gives the reason the address is on it.
    SUPPRESSED = "suppressed", "Suppressed"


class RecipientChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


# Statuses a recipient never leaves, except failed through "retry failed".
FINAL_RECIPIENT_STATUSES = (
    RecipientStatus.SENT,
    RecipientStatus.FAILED,
    RecipientStatus.CANCELLED,
    RecipientStatus.SUPPRESSED,
)


# The position of the reading statement's snapshot in commit order, as one
# number: the snapshot's xmax (one past the newest completed transaction)
# times 2**20, minus how many transactions were still running below it. A
# snapshot taken later never gets a smaller number, and a larger number sees
# every commit that a smaller one sees, so data read with a larger number is
# never older. Fewer than 2**20 transactions run at once (max_connections is
# at most 262,143).
SNAPSHOT_VERSION_SQL = """
    SELECT (pg_snapshot_xmax(s)::text::numeric * 1048576
            - (SELECT count(*) FROM pg_snapshot_xip(s)))::text
      FROM pg_current_snapshot() AS s
"""


class CampaignQuerySet(models.QuerySet["Campaign"]):
    def with_progress(self) -> CampaignQuerySet:
        """Annotate each campaign's status counts and the version of the read.

        The campaign row, its counts and `snapshot_version` come from one
        statement and so from one snapshot: a page keeps the header or summary
        with the higher version and never shows older counts after newer ones.
        """
        counts = RawSQL(
            f"""
            SELECT coalesce(jsonb_object_agg(status, total), '{{}}'::jsonb)
              FROM (SELECT status, sum(delta) AS total
                      FROM {StatusCountChange._meta.db_table}
                     WHERE campaign_id = {self.model._meta.db_table}.id
                     GROUP BY status) AS counts
            """,
            [],
            output_field=models.JSONField(),
        )
        return self.annotate(
            status_counts=counts,
            snapshot_version=RawSQL(SNAPSHOT_VERSION_SQL, [], output_field=models.TextField()),
        )


class Campaign(models.Model):
    Status = CampaignStatus

    # PROTECT: a workspace that still has campaigns cannot be deleted.
    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.PROTECT, related_name="campaigns"
    )
    name = models.CharField(max_length=CAMPAIGN_NAME_MAX_LENGTH)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    pause_reason = models.CharField(max_length=255, blank=True, editable=False)
    rate_limit_per_second = models.FloatField(
        null=True,
        blank=True,
        help_text="Most messages per second for this campaign; empty means only the "
        "provider's global limit applies.",
    )
    # Message content in the sandboxed template language of campaigns/content.py,
    # checked when it is saved through a form. The table has defaults too, so
    # that an INSERT that names none of these columns still works.
    email_subject = models.CharField(
        max_length=EMAIL_SUBJECT_MAX_LENGTH,
        blank=True,
        default="",
        db_default="",
        validators=[validate_text_template],
    )
    email_text = models.TextField(
        "email text",
        blank=True,
        default="",
        db_default="",
        validators=[validate_text_template],
        help_text="Plain-text body.",
    )
    email_html = models.TextField(
        "email HTML",
        blank=True,
        default="",
        db_default="",
        validators=[validate_html_template],
        help_text="Optional HTML body, sent next to the plain-text one. Recipient fields "
        "are HTML-escaped in it.",
    )
    sms_text = models.TextField(
        "SMS text", blank=True, default="", db_default="", validators=[validate_text_template]
    )
    prefer_sms = models.BooleanField(
        "prefer SMS",
        default=False,
        db_default=False,
        help_text="Send an SMS rather than an email to recipients with both a phone number "
        "and an email address.",
    )
    # Outcomes since the campaign was dispatched or last resumed, for the
    # automatic pause when failures pass the configured threshold.
    processed_since_resume = models.PositiveIntegerField(default=0, editable=False)
    failed_since_resume = models.PositiveIntegerField(default=0, editable=False)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CampaignStatus.values),
                name="campaign_status_valid",
            ),
            models.CheckConstraint(condition=Q(name__regex=r"\S"), name="campaign_name_not_blank"),
            models.CheckConstraint(
                condition=Q(rate_limit_per_second__isnull=True) | Q(rate_limit_per_second__gt=0),
                name="campaign_rate_limit_positive",
            ),
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

    @property
    def read_version(self) -> int | None:
        """The version of the read that `with_progress()` made (see SNAPSHOT_VERSION_SQL),
        or None for a campaign read otherwise."""
        value = self.__dict__.get("snapshot_version")
        return int(value) if value is not None else None

    def progress(self) -> Progress:
        """Count recipients by status from the campaign's status count changes.

        Uses the counts read with the campaign when it came from
        `with_progress()`; otherwise one indexed query whose cost depends on
        how many changes were made since the last fold, not on how many
        recipients the campaign has.
        """
        counts = getattr(self, "status_counts", None)
        if counts is None:
            rows = (
                StatusCountChange.objects.filter(campaign_id=self.pk)
                .values("status")
                .annotate(count=Sum("delta"))
                .order_by()
            )
            counts = {row["status"]: row["count"] for row in rows}
        return Progress(
            queued=counts.get(Recipient.Status.QUEUED, 0),
            in_flight=counts.get(Recipient.Status.IN_FLIGHT, 0),
            sent=counts.get(Recipient.Status.SENT, 0),
            failed=counts.get(Recipient.Status.FAILED, 0),
            cancelled=counts.get(Recipient.Status.CANCELLED, 0),
            suppressed=counts.get(Recipient.Status.SUPPRESSED, 0),
        )

    def has_retryable_failures(self) -> bool:
        """Return whether any failed recipient's last error was transient.

        Those are the recipients that `retry_failed` queues again.
        """
        return self.recipients.filter(
            status=Recipient.Status.FAILED, last_error_transient=True
        ).exists()

    def active_import(self) -> Any:
        """Return the import that is queued or running for this campaign, or None."""
        from imports.models import ACTIVE_IMPORT_STATUSES

        return self.imports.filter(status__in=ACTIVE_IMPORT_STATUSES).first()

    @property
    def is_active(self) -> bool:
        """True while workers may still deliver: processing or paused."""
        return self.status in (self.Status.PROCESSING, self.Status.PAUSED)

    def missing_content(self) -> list[str]:
        """Say what the content lacks for the channels that recipients will get.

        Recipients with an email address get an email, unless `prefer_sms` is
        on and they have a phone number too; the others get an SMS. Returns
        one sentence per channel that some recipient needs and the content
        cannot fill, or [] when the campaign can be sent. Queries the
        recipients only for a channel whose content is missing.
        """
        problems = []
        email_gap = missing_content(self, RecipientChannel.EMAIL)
        if email_gap:
            gets_email = ~Q(email="")
            if self.prefer_sms:
                gets_email &= Q(phone_number="")
            if self.recipients.filter(gets_email).exists():
                absent = " and ".join(missing_email_parts(self))
                problems.append(
                    f"Write an email {absent}: {email_gap}, and recipients with "
                    "an email address get an email."
                )
        if missing_content(self, RecipientChannel.SMS):
            gets_sms = ~Q(phone_number="") if self.prefer_sms else Q(email="")
            if self.recipients.filter(gets_sms).exists():
                problems.append(
                    "Write an SMS text: the campaign has none, and recipients "
                    + (
                        "with a phone number get an SMS, because SMS is preferred."
                        if self.prefer_sms
                        else "without an email address get an SMS."
                    )
                )
        return problems

    # Transitions. Each runs one conditional UPDATE of the campaign row and
    # returns True when this call made the change. When it did, the in-memory
    # fields are refreshed from the database.

    def start(self) -> bool:
        """Move `pending → processing`; refused for a campaign without recipients,
        with an import that is queued or running, or whose content lacks what
        its recipients' channels need (see `missing_content`). Uploads that
        wait for their column mapping are cancelled.

        The campaign's row is locked first, as an import's job and the edit
        form lock it before they add recipients, so the checks see every
        import queued and every recipient added before the lock.
        """
        from imports.models import ACTIVE_IMPORT_STATUSES, RecipientImport

        has_recipients = Exists(Recipient.objects.filter(campaign=OuterRef("pk")))
        importing = Exists(
            RecipientImport.objects.filter(
                campaign=OuterRef("pk"), status__in=ACTIVE_IMPORT_STATUSES
            )
        )
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().filter(pk=self.pk)
            content = locked.values(
                "email_subject", "email_text", "email_html", "sms_text", "prefer_sms"
            ).first()
            if content is None:
                return False
            for name, value in content.items():
                setattr(self, name, value)
            if self.missing_content():
                return False
            started = self._transition(
                [self.Status.PENDING],
                self.Status.PROCESSING,
                has_recipients,
                ~importing,
                started_at=timezone.now(),
            )
            if started:
                # Uploads still waiting for their column mapping can no longer run.
                self.imports.filter(status=RecipientImport.Status.MAPPING).update(
                    status=RecipientImport.Status.CANCELLED,
                    finished_at=timezone.now(),
                    error="The campaign was dispatched before this file's columns were "
                    "confirmed, so nothing from it was added.",
                )
            return started

    def complete(self) -> bool:
        """Move `processing → completed` once no recipient is queued or in flight."""
        has_unfinished = Exists(
            Recipient.objects.filter(
                campaign=OuterRef("pk"),
                status__in=[Recipient.Status.QUEUED, Recipient.Status.IN_FLIGHT],
            )
        )
        return self._transition(
            [self.Status.PROCESSING],
            self.Status.COMPLETED,
            ~has_unfinished,
            completed_at=timezone.now(),
        )

    def pause(self, reason: str = "") -> bool:
        """Move `processing → paused`. Workers stop claiming at once; claims finish."""
        return self._transition(
            [self.Status.PROCESSING],
            self.Status.PAUSED,
            paused_at=timezone.now(),
            pause_reason=reason[:255],
        )

    def resume(self) -> bool:
        """Move `paused → processing` and restart the failure count for the auto-pause."""
        return self._transition(
            [self.Status.PAUSED],
            self.Status.PROCESSING,
            pause_reason="",
            processed_since_resume=0,
            failed_since_resume=0,
        )

    def cancel(self) -> bool:
        """Move `pending | processing | paused → cancelled`; queued recipients become cancelled.

        Recipients in flight keep the outcome that their delivery records.
        """
        with transaction.atomic():
            cancelled = self._transition(
                [self.Status.PENDING, self.Status.PROCESSING, self.Status.PAUSED],
                self.Status.CANCELLED,
                cancelled_at=timezone.now(),
            )
            if cancelled:
                Recipient.objects.filter(campaign=self, status=Recipient.Status.QUEUED).update(
                    status=Recipient.Status.CANCELLED,
                    processed_at=timezone.now(),
                    next_attempt_at=None,
                )
        return cancelled

    def retry_failed(self) -> int:
        """Move `completed → processing` and queue again the failed recipients whose
        last error was transient; returns how many were queued (0 when refused).
        Sent recipients are never touched.
        """
        retryable = Recipient.objects.filter(
            campaign=OuterRef("pk"), status=Recipient.Status.FAILED, last_error_transient=True
        )
        with transaction.atomic():
            if not self._transition(
                [self.Status.COMPLETED],
                self.Status.PROCESSING,
                Exists(retryable),
                completed_at=None,
                processed_since_resume=0,
                failed_since_resume=0,
            ):
                return 0
            # Each recipient gets a fresh budget of attempts for this round.
            return Recipient.objects.filter(
                campaign=self, status=Recipient.Status.FAILED, last_error_transient=True
            ).update(
                status=Recipient.Status.QUEUED,
                attempt_base=F("attempts"),
                next_attempt_at=None,
                failure_reason="",
                processed_at=None,
            )

    def count_outcomes(self, processed: int, failed: int) -> tuple[int, int]:
        """Add to the counts since the last resume; returns the new (processed, failed)."""
        table = Campaign._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET processed_since_resume = processed_since_resume + %s, "
                "failed_since_resume = failed_since_resume + %s WHERE id = %s "
                "RETURNING processed_since_resume, failed_since_resume",
                [processed, failed, self.pk],
            )
            row = cursor.fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def _transition(
        self, sources: list[CampaignStatus], target: CampaignStatus, *conditions: Any, **fields: Any
    ) -> bool:
        changed = Campaign.objects.filter(*conditions, pk=self.pk, status__in=sources).update(
            status=target, **fields
        )
        if changed:
            self.refresh_from_db()
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

    def duplicate(self) -> Campaign:
        """Create a pending copy of the campaign with the same content and recipients,
        all queued.

        The recipients are copied by one INSERT ... SELECT, so none is loaded
        into Python, and the status count triggers count them like any other
        insert. Delivery bookkeeping (attempts, claims, outcomes) is not copied.
        """
        recipients = Recipient._meta.db_table
        with transaction.atomic():
            copy = Campaign.objects.create(
                workspace_id=self.workspace_id,
                name=copy_name(self.name),
                rate_limit_per_second=self.rate_limit_per_second,
                email_subject=self.email_subject,
                email_text=self.email_text,
                email_html=self.email_html,
                sms_text=self.sms_text,
                prefer_sms=self.prefer_sms,
            )
            with connection.cursor() as cursor:
                # Every NOT NULL column is named, because Django keeps most
                # model defaults in Python rather than in the table.
                cursor.execute(
                    f"""
                    INSERT INTO {recipients}
                           (campaign_id, name, email, phone_number, status, failure_reason,
                            processed_at, attempts, attempt_base, next_attempt_at, claim_token,
                            claimed_at, lease_expires_at, last_error_transient,
                            provider_message_id, version)
                    SELECT %s, name, email, phone_number, %s, '', NULL, 0, 0, NULL, NULL,
                           NULL, NULL, false, '', 0
                      FROM {recipients}
                     WHERE campaign_id = %s
                     ORDER BY id
                    """,
                    [copy.pk, Recipient.Status.QUEUED, self.pk],
                )
        return copy


class Recipient(models.Model):
    Status = RecipientStatus

    # No index of its own: recipient_campaign_id starts with campaign_id.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", db_index=False
    )
    name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)
    phone_number = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Chosen when the recipient is first claimed (dispatch/claims.py), and
    # kept for retries; empty until then.
    channel = models.CharField(
        max_length=5,
        choices=RecipientChannel.choices,
        blank=True,
        default="",
        db_default="",
        editable=False,
    )
    failure_reason = models.CharField(max_length=FAILURE_REASON_MAX_LENGTH, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Delivery bookkeeping, written by the dispatch engine (dispatch/engine.py).
    attempts = models.PositiveIntegerField(default=0, editable=False)
    # `attempts` when the current round began: "retry failed" starts a new
    # round, which gets the full number of attempts again.
    attempt_base = models.PositiveIntegerField(default=0, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True, editable=False)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error_transient = models.BooleanField(default=False, editable=False)
    provider_message_id = models.CharField(max_length=255, blank=True, editable=False)
    # Goes up by one with every UPDATE of the row (a trigger adds it where a
    # statement does not; see migration 0006). A page keeps the row with the
    # higher version, so an update that arrives late never undoes a newer one.
    version = models.BigIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            # A campaign's recipients of one status. The trailing id lets the
            # campaign page's status filter read rows in id order without a sort.
            models.Index(fields=["campaign", "status", "id"], name="recipient_campaign_status_id"),
            # A campaign's recipients in id order, for the unfiltered campaign
            # page. Without it PostgreSQL walks the primary key and skips the
            # rows of the campaigns before this one, so the first page costs
            # more the more recipients earlier campaigns have.
            models.Index(fields=["campaign", "id"], name="recipient_campaign_id"),
            # Claims: a campaign's queued recipients in claim order, first
            # those never tried, then retries by due time. The primary key
            # cannot give this order, so the planner cannot prefer it and
            # scan past every recipient already processed.
            models.Index(
                F("campaign"),
                F("next_attempt_at").asc(nulls_first=True),
                F("id"),
                condition=Q(status="queued"),
                name="recipient_claim_order",
            ),
            # The sweep: claims whose lease has expired.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="in_flight"),
                name="recipient_lease",
            ),
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
            models.CheckConstraint(
                condition=~Q(status="in_flight")
                | Q(claim_token__isnull=False, lease_expires_at__isnull=False),
                name="recipient_in_flight_has_lease",
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

    @property
    def idempotency_key(self) -> str:
        """The key passed to providers: the same for every attempt and every reclaim."""
        return delivery_key(self.campaign_id, self.pk)


def delivery_key(campaign_id: int, recipient_id: int) -> str:
    return f"campaign-{campaign_id}-recipient-{recipient_id}"


def mark_suppressed(campaign_id: int, recipient_ids: Iterable[int], reason: str) -> int:
    """Move the campaign's queued or in-flight recipients among `recipient_ids` to
    `suppressed`, with `reason` as their failure reason; returns how many changed.

    One conditional UPDATE, so a recipient that reached a final status
    meanwhile keeps it. A claim on a suppressed row is dropped with its lease,
    so the sweep never returns it to the queue.
    """
    return Recipient.objects.filter(
        campaign_id=campaign_id,
        pk__in=list(recipient_ids),
        status__in=[RecipientStatus.QUEUED, RecipientStatus.IN_FLIGHT],
    ).update(
        status=RecipientStatus.SUPPRESSED,
        failure_reason=reason[:FAILURE_REASON_MAX_LENGTH],
        processed_at=timezone.now(),
        next_attempt_at=None,
        claim_token=None,
        claimed_at=None,
        lease_expires_at=None,
    )


class StatusCountChange(models.Model):
    """A change in how many of a campaign's recipients have one status.

    Triggers on the recipients table add one row per statement, campaign and
    status that the statement changed (see migration 0004), so a campaign's
    count of a status is the sum of its rows. The header reads counts this way
    without reading recipients. The sweep folds each campaign's rows into one
    per status (`fold_status_counts`), so the sums stay short.
    """

    # No database constraint: rows of a deleted campaign may outlive it until
    # the next fold, and deleting a campaign does not lock them.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    status = models.CharField(max_length=20)
    delta = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(
                fields=["campaign", "status"], include=["delta"], name="status_count_campaign"
            )
        ]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} {self.status} {self.delta:+d}"

    @classmethod
    def fold(cls) -> int:
        """Merge each campaign's changes into one row per status, and drop the rows of
        deleted campaigns; returns how many rows were removed.

        One statement, so a reader sees either the rows before or after it,
        with the same sums. Changes that other transactions add meanwhile are
        not touched.
        """
        table = cls._meta.db_table
        campaigns = Campaign._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH removed AS (
                    DELETE FROM {table}
                     WHERE campaign_id IN (SELECT campaign_id FROM {table}
                                            GROUP BY campaign_id, status HAVING count(*) > 1)
                        OR NOT EXISTS (SELECT 1 FROM {campaigns} AS c WHERE c.id = campaign_id)
                    RETURNING campaign_id, status, delta
                ),
                merged AS (
                    INSERT INTO {table} (campaign_id, status, delta)
                    SELECT campaign_id, status, sum(delta) FROM removed
                     WHERE EXISTS (SELECT 1 FROM {campaigns} AS c WHERE c.id = campaign_id)
                     GROUP BY campaign_id, status
                    HAVING sum(delta) <> 0
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM removed) - (SELECT count(*) FROM merged)
                """
            )
            row = cursor.fetchone()
        return int(row[0]) if row else 0


class DeliveryAttempt(models.Model):
    """One call to a provider for one recipient, or a claim lost with its worker."""

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        TRANSIENT_ERROR = "transient_error", "Transient error"
        PERMANENT_ERROR = "permanent_error", "Permanent error"
        LEASE_EXPIRED = "lease_expired", "Lease expired"

    # No index of its own: attempt_recipient_number starts with recipient_id.
    recipient = models.ForeignKey(
        Recipient, on_delete=models.CASCADE, related_name="delivery_attempts", db_index=False
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    provider_message_id = models.CharField(max_length=255, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["recipient", "number", "id"]
        indexes = [models.Index(fields=["recipient", "number"], name="attempt_recipient_number")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    outcome__in=["sent", "transient_error", "permanent_error", "lease_expired"]
                ),
                name="attempt_outcome_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of recipient {self.recipient_id}: {self.outcome}"
