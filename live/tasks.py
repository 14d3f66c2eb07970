"""Celery tasks that render and publish live updates outside the request."""

from __future__ import annotations

from celery import shared_task

from campaigns.models import Campaign
from live import broadcasts


@shared_task(name="live.broadcast_campaign", ignore_result=True)
def broadcast_campaign_task(
    campaign_id: int, refresh: bool = False, request_id: str | None = None
) -> None:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return
    if refresh:
        broadcasts.broadcast_refresh(campaign, request_id)
    else:
        broadcasts.broadcast_campaign(campaign)


def broadcast_campaign_later(
    campaign_id: int, refresh: bool = False, request_id: str | None = None
) -> None:
    """Publish the campaign's header (or, with `refresh`, ask pages to reload it) from a worker.

    `request_id` goes into the refresh stream, so that the page which sent
    that Turbo request does not refresh.
    """
    broadcast_campaign_task.delay(campaign_id, refresh=refresh, request_id=request_id)
