"""An operator's actions on a campaign: dispatch, pause, resume and cancel.

The web buttons (campaigns/views.py) and the JSON API (api/endpoints.py)
both call these. Each runs the model's transition, and when it succeeds,
records the audit event and schedules what follows (the worker job, the
live-page broadcast) for after the commit, all in one transaction. Each
returns whether the transition happened. The callers decide how to tell
their user.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction

from audit.models import Action, record
from campaigns.models import Campaign
from dispatch.tasks import dispatch_campaign_later, wake_campaign_later
from live.broadcasts import broadcast_campaign, broadcast_refresh


def dispatch(campaign: Campaign, user: Any, detail: str = "") -> bool:
    """Move the campaign `pending → processing` and enqueue its start after the commit."""
    with transaction.atomic():
        started = campaign.start()
        if started:
            record(campaign, Action.DISPATCHED, user, detail)
            # Only the request whose UPDATE won enqueues, and only once its
            # transaction is visible to the worker.
            transaction.on_commit(partial(dispatch_campaign_later, campaign.pk))
    return started


def pause(campaign: Campaign, user: Any, reason: str, detail: str = "") -> bool:
    """Move the campaign `processing → paused`; open pages show it after the commit."""
    with transaction.atomic():
        paused = campaign.pause(reason)
        if paused:
            record(campaign, Action.PAUSED, user, detail)
            transaction.on_commit(partial(broadcast_campaign, campaign))
    return paused


@dataclass(frozen=True)
class Resumed:
    resumed: bool
    # True when nothing was left to deliver, so the campaign completed at once.
    completed: bool


def resume(campaign: Campaign, user: Any, detail: str = "") -> Resumed:
    """Move the campaign `paused → processing`, or to completed when nothing is left.

    With no recipient queued or in flight, no worker loop is woken to find
    nothing to do.
    """
    completed = False
    with transaction.atomic():
        resumed = campaign.resume()
        if resumed:
            completed = campaign.complete()
            notes = [detail] if detail else []
            if completed:
                notes.append("nothing was left to deliver, so it completed")
            record(campaign, Action.RESUMED, user, "; ".join(notes))
            if not completed:
                transaction.on_commit(partial(wake_campaign_later, campaign.pk))
            transaction.on_commit(partial(broadcast_campaign, campaign))
    return Resumed(resumed, completed)


def cancel(
    campaign: Campaign, user: Any, detail: str = "", turbo_request_id: str | None = None
) -> bool:
    """Cancel the campaign and its queued recipients; open pages refresh after the commit.

    `turbo_request_id` is the id of the page's own request, which keeps its
    flash message and skips the refresh.
    """
    with transaction.atomic():
        cancelled = campaign.cancel()
        if cancelled:
            record(campaign, Action.CANCELLED, user, detail)
            transaction.on_commit(partial(broadcast_refresh, campaign.pk, turbo_request_id))
    return cancelled
