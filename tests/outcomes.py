"""Put recipients into delivery states without running a worker.

The dispatch engine claims recipients (`dispatch.claims.claim_batch`) and
writes their outcomes in bulk (`dispatch.claims.record_outcomes`). Tests of
pages, transitions and streams only need a recipient in a given state. These
helpers make the same changes to one row with one conditional UPDATE on the
expected status, and record the attempt as the engine does.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db.models import Case, F, PositiveIntegerField, Value, When
from django.utils import timezone

from campaigns.models import FAILURE_REASON_MAX_LENGTH, Campaign, DeliveryAttempt, Recipient

# The lease the engine gives a claim by default (DELIVERY_LEASE_SECONDS).
LEASE_SECONDS = 60.0

# Statuses that `set_outcome` accepts: `queued`, which it claims and finishes
# in one step, and `in_flight`, which `claim` leaves.
_OUTCOME_SOURCES = [Recipient.Status.QUEUED, Recipient.Status.IN_FLIGHT]


def move_to_status(campaign: Campaign, status: str) -> None:
    """Move a pending campaign with recipients to `status` through its transitions.

    For `completed`, every recipient is first recorded as sent.
    """
    if status == Campaign.Status.PENDING:
        return
    assert campaign.start(), f"campaign {campaign.pk} did not start"
    if status == Campaign.Status.PAUSED:
        assert campaign.pause("paused by a test")
    elif status == Campaign.Status.CANCELLED:
        assert campaign.cancel()
    elif status == Campaign.Status.COMPLETED:
        for recipient in campaign.recipients.all():
            assert set_outcome(recipient, Recipient.Status.SENT)
        assert campaign.complete()
    assert campaign.status == status, f"campaign {campaign.pk} is {campaign.status}, not {status}"


def claim(recipient: Recipient, lease_seconds: float = LEASE_SECONDS) -> bool:
    """Move `queued → in_flight` under a new claim token and lease, counting one attempt.

    Return whether the row changed. The instance is refreshed when it did.
    """
    now = timezone.now()
    changed = Recipient.objects.filter(pk=recipient.pk, status=Recipient.Status.QUEUED).update(
        status=Recipient.Status.IN_FLIGHT,
        claim_token=uuid.uuid4(),
        claimed_at=now,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        attempts=F("attempts") + 1,
        next_attempt_at=None,
    )
    if changed:
        recipient.refresh_from_db()
    return changed == 1


def set_outcome(
    recipient: Recipient,
    status: str,
    reason: str = "",
    transient: bool = False,
    retry_at: datetime | None = None,
) -> bool:
    """Record a delivery outcome for a queued or in-flight recipient.

    `status` is `sent`, `failed`, or `queued` with `retry_at` for a transient
    error that the engine would retry. A queued recipient counts one more
    attempt, because the engine counts it when it claims. The attempt is
    recorded as a DeliveryAttempt. Return whether the row changed. The
    instance is refreshed when it did.
    """
    if status not in (Recipient.Status.SENT, Recipient.Status.FAILED, Recipient.Status.QUEUED):
        raise ValueError(f"invalid outcome status {status!r}: use sent, failed or queued")
    if (status == Recipient.Status.QUEUED) != (retry_at is not None):
        raise ValueError("retry_at is required for status queued and invalid for the others")

    now = timezone.now()
    message_id = f"test-message-{recipient.pk}" if status == Recipient.Status.SENT else ""
    # The engine stores a reason only for a final failure.
    failure_reason = ""
    if status == Recipient.Status.FAILED:
        failure_reason = reason[:FAILURE_REASON_MAX_LENGTH]
    changed = Recipient.objects.filter(pk=recipient.pk, status__in=_OUTCOME_SOURCES).update(
        status=status,
        attempts=Case(
            When(status=Recipient.Status.QUEUED, then=F("attempts") + 1),
            default=F("attempts"),
            output_field=PositiveIntegerField(),
        ),
        failure_reason=failure_reason,
        last_error_transient=Value(transient),
        provider_message_id=message_id,
        next_attempt_at=retry_at,
        processed_at=None if status == Recipient.Status.QUEUED else now,
        claim_token=None,
        claimed_at=None,
        lease_expires_at=None,
    )
    if not changed:
        return False

    recipient.refresh_from_db()
    DeliveryAttempt.objects.create(
        recipient=recipient,
        campaign_id=recipient.campaign_id,
        number=recipient.attempts,
        started_at=now,
        finished_at=now,
        outcome=_attempt_outcome(status, transient),
        provider_message_id=message_id,
        error=reason[:500],
    )
    return True


def _attempt_outcome(status: str, transient: bool) -> str:
    if status == Recipient.Status.SENT:
        return DeliveryAttempt.Outcome.SENT
    if transient:
        return DeliveryAttempt.Outcome.TRANSIENT_ERROR
    return DeliveryAttempt.Outcome.PERMANENT_ERROR
