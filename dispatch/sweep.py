"""The periodic sweep: repairs what a dead worker or a lost queue message left behind.

Celery beat runs it every `DISPATCH_SWEEP_INTERVAL_SECONDS`. It is safe to run
anywhere, any number of times: a PostgreSQL advisory lock lets one sweep run
at a time, and every change it makes is a conditional UPDATE.

It also starts retries. A worker loop exits when the campaign's next retry is
more than one sweep interval away, and no delayed message wakes the campaign
later, so the sweep wakes it once a retry has fallen due.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Now

from campaigns.models import Campaign, Recipient, StatusCountChange
from dispatch import claims
from dispatch.locks import advisory_lock
from live import broadcasts

logger = logging.getLogger(__name__)

# Second key of the sweep's advisory lock; campaign ids use the same namespace
# and start at 1, so 0 never collides with one.
SWEEP_LOCK_KEY = 0


@dataclass
class SweepResult:
    ran: bool = False
    expired: int = 0
    woken: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    folded: int = 0


def sweep() -> SweepResult:
    """Requeue expired claims, wake or complete processing campaigns that need it, and
    fold the status count changes."""
    result = SweepResult()
    with advisory_lock(SWEEP_LOCK_KEY) as acquired:
        if not acquired:
            logger.info("sweep: another sweep is running; skipping")
            return result
        result.ran = True
        _expire_leases(result)
        _repair_campaigns(result)
        # Keeps the sums behind every campaign's header short.
        result.folded = StatusCountChange.fold()
    if result.expired or result.woken or result.completed:
        logger.info(
            "sweep: %d expired claims requeued; woke campaigns %s; completed campaigns %s",
            result.expired,
            result.woken,
            result.completed,
        )
    return result


def _expire_leases(result: SweepResult) -> None:
    by_campaign: dict[int, list[Recipient]] = defaultdict(list)
    while expired := claims.expire_leases():
        result.expired += len(expired)
        for recipient in expired:
            by_campaign[recipient.campaign_id].append(recipient)
    for campaign_id, recipients in by_campaign.items():
        logger.warning(
            "campaign %s: %d claims expired (their worker stopped); recipients %s requeued",
            campaign_id,
            len(recipients),
            [r.pk for r in recipients[:20]],
        )
        broadcasts.broadcast_recipients(campaign_id, recipients)


def _repair_campaigns(result: SweepResult) -> None:
    from dispatch.tasks import wake_campaign_later

    # The database's clock, which claims and retry times use too.
    now = Now()
    recipients = Recipient.objects.filter(campaign=OuterRef("pk"))
    live_claim = recipients.filter(status=Recipient.Status.IN_FLIGHT, lease_expires_at__gt=now)
    due = recipients.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        status=Recipient.Status.QUEUED,
    )
    campaigns = Campaign.objects.filter(status=Campaign.Status.PROCESSING).annotate(
        has_live_claim=Exists(live_claim), has_due=Exists(due)
    )
    for campaign in campaigns:
        if campaign.has_live_claim:
            continue
        if campaign.has_due:
            # Due work without a live claim means that the campaign's loops
            # have exited or its queue messages were lost (a Redis restart
            # without persistence, say). Retries whose time has passed count
            # as due work. Wake workers again.
            wake_campaign_later(campaign.pk)
            result.woken.append(campaign.pk)
        elif campaign.complete():
            # Its last worker died after recording the final outcomes.
            broadcasts.broadcast_campaign(campaign)
            result.completed.append(campaign.pk)
