"""Celery tasks. Each one is a thin wrapper around a function that tests call directly."""

from __future__ import annotations

from celery import shared_task

from dispatch.dispatcher import dispatch_campaign


# acks_late: the message is acknowledged only after the run, so a worker that
# dies mid-campaign leaves it to be delivered again. That is safe because a
# run delivers only recipients that are still queued.
@shared_task(name="dispatch.dispatch_campaign", acks_late=True, ignore_result=True)
def dispatch_campaign_task(campaign_id: int) -> None:
    dispatch_campaign(campaign_id)


def dispatch_campaign_later(campaign_id: int) -> None:
    """Enqueue the dispatch job; call it after the transaction that started the campaign commits."""
    dispatch_campaign_task.delay(campaign_id)
