"""The dispatch loop: deliver a processing campaign's queued recipients one by one."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from campaigns.models import Campaign, Recipient
from dispatch.providers import DeliveryError, Provider, get_provider
from live import broadcasts

logger = logging.getLogger(__name__)

# First key of the two-key advisory lock, so that campaign ids cannot collide
# with advisory locks that other code on the same database takes.
ADVISORY_LOCK_NAMESPACE = 0x0CD1

# Queued recipients are read in pages of this size; outcomes are still written
# one recipient at a time.
BATCH_SIZE = 100


@contextmanager
def campaign_lock(campaign_id: int) -> Iterator[bool]:
    """Try to take the campaign's advisory lock without waiting; yield whether it was taken.

    The lock is session-level, so it belongs to this process's database
    connection and stays held across the short transactions of the loop. It is
    released on every exit path, and PostgreSQL drops it if the connection dies.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, campaign_id]
        )
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, campaign_id]
                )


def dispatch_campaign(campaign_id: int, provider: Provider | None = None) -> None:
    """Deliver every queued recipient of a processing campaign, then complete it.

    Safe to run again at any time: only `queued` recipients are delivered, and
    a run that finds the lock taken by another worker returns at once.
    """
    with campaign_lock(campaign_id) as acquired:
        if not acquired:
            logger.info(
                "campaign %s: another worker holds the dispatch lock; skipping", campaign_id
            )
            return
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            logger.warning("campaign %s: not found; nothing to dispatch", campaign_id)
            return
        if campaign.status != Campaign.Status.PROCESSING:
            logger.info(
                "campaign %s: status is %s, not processing; nothing to dispatch",
                campaign_id,
                campaign.status,
            )
            return
        _run(campaign, provider or get_provider())


def _run(campaign: Campaign, provider: Provider) -> None:
    started = time.monotonic()
    logger.info("campaign %s: dispatch started", campaign.pk)
    broadcasts.broadcast_campaign(campaign)

    for recipient in _queued_recipients(campaign):
        deliver_one(recipient, provider)

    completed = campaign.complete()
    progress = campaign.progress()
    if completed:
        broadcasts.broadcast_campaign(campaign)
    logger.info(
        "campaign %s: dispatch finished in %.1fs (sent=%d failed=%d queued=%d, completed=%s)",
        campaign.pk,
        time.monotonic() - started,
        progress.sent,
        progress.failed,
        progress.queued,
        completed,
    )


def _queued_recipients(campaign: Campaign) -> Iterator[Recipient]:
    """Yield the campaign's queued recipients in id order, a page at a time."""
    last_id = 0
    while True:
        page = list(
            Recipient.objects.filter(
                campaign=campaign, status=Recipient.Status.QUEUED, id__gt=last_id
            ).order_by("id")[:BATCH_SIZE]
        )
        if not page:
            return
        yield from page
        last_id = page[-1].pk


def deliver_one(recipient: Recipient, provider: Provider) -> None:
    """Deliver to one recipient and record the outcome in its own short transaction.

    No transaction is open during the provider call. Any exception from the
    provider fails only this recipient, so the loop goes on with the next one.
    """
    try:
        provider.deliver(recipient)
    except DeliveryError as exc:
        reason = str(exc)
        logger.warning(
            "campaign %s recipient %s: delivery failed: %s",
            recipient.campaign_id,
            recipient.pk,
            reason,
        )
        changed = recipient.mark_failed(reason)
    except Exception as exc:
        # A provider bug or an unexpected network error must not stop the
        # campaign; it is logged with its traceback and recorded as a failure.
        logger.exception(
            "campaign %s recipient %s: delivery raised an unexpected error",
            recipient.campaign_id,
            recipient.pk,
        )
        changed = recipient.mark_failed(f"unexpected error: {type(exc).__name__}: {exc}")
    else:
        changed = recipient.mark_sent()

    if changed:
        broadcasts.broadcast_recipient(recipient)
    else:
        logger.warning(
            "campaign %s recipient %s: no longer queued; outcome not recorded",
            recipient.campaign_id,
            recipient.pk,
        )
