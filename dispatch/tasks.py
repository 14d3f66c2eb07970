"""Celery tasks. Each is a thin wrapper around a function that tests call directly.

Messages carry only a campaign id and only wake workers. The database decides
what each worker does, so a lost or duplicated message changes nothing that
the sweep cannot repair.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from campaigns.models import Campaign
from dispatch.engine import run_campaign
from dispatch.locks import advisory_lock
from dispatch.sweep import sweep
from live import broadcasts

logger = logging.getLogger(__name__)


@shared_task(name="dispatch.start_campaign", ignore_result=True)
def start_campaign_task(campaign_id: int) -> None:
    start_campaign(campaign_id)


# The message is acknowledged when the loop starts, not when it ends. A loop
# that dies leaves claims whose leases expire, and the sweep queues them
# again and wakes the campaign, so a second delivery of the message would add
# nothing. While unacknowledged, it would be delivered again after the broker's
# visibility timeout, and kombu 5.7.0 crashes a worker that has one when
# Redis restarts (see CELERY_WORKER_DISABLE_PREFETCH in config/settings.py).
@shared_task(name="dispatch.process_campaign", ignore_result=True)
def process_campaign_task(campaign_id: int) -> None:
    run_campaign(campaign_id)


@shared_task(name="dispatch.sweep", ignore_result=True)
def sweep_task() -> None:
    sweep()


def start_campaign(campaign_id: int) -> bool:
    """Announce a newly processing campaign and wake workers for it.

    Holds the campaign's advisory lock while it plans, so that a duplicate
    start message arriving at the same moment does nothing. Returns whether
    this call did the planning.
    """
    with advisory_lock(campaign_id) as acquired:
        if not acquired:
            logger.info("campaign %s: another worker is starting it; skipping", campaign_id)
            return False
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.PROCESSING:
            return False
        logger.info("campaign %s: dispatch started", campaign_id)
        broadcasts.broadcast_campaign(campaign)
        wake_campaign_later(campaign_id)
        return True


def dispatch_campaign_later(campaign_id: int) -> None:
    """Enqueue the start of a campaign; call it after the transaction that started it commits."""
    start_campaign_task.delay(campaign_id)


def wake_campaign_later(campaign_id: int, workers: int | None = None) -> None:
    """Enqueue `workers` worker loops for the campaign (default DISPATCH_WORKERS_PER_CAMPAIGN).

    The messages are due at once. Retries that fall due later are left to the
    sweep, which wakes the campaign then.
    """
    for _ in range(workers or settings.DISPATCH_WORKERS_PER_CAMPAIGN):
        process_campaign_task.delay(campaign_id)
