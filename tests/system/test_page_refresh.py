"""A morphing refresh of the campaign page must not leave it older than its stream.

After Pause, Resume, Cancel or Dispatch, Turbo follows the redirect back to
the same URL and morphs the page into the HTML that the server rendered
then. A `refresh` Turbo Stream does the same. That HTML lacks any update that
the stream applied while it was in transit, so the page needs a fresh
snapshot from its stream after every morph.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from django.db import connection
from playwright.sync_api import Page, Route, expect

from campaigns.models import Campaign, Recipient
from live import broadcasts
from tests.outcomes import set_outcome
from tests.system.browser import (
    expect_no_page_load,
    mark_window,
    record_header_updates,
    wait_for_snapshot,
    wait_for_subscribers,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

# Counts Turbo renders (a morph is one) on `window.__renders`.
COUNT_RENDERS = """
window.__renders = 0
document.addEventListener("turbo:render", () => { window.__renders += 1 })
"""


def test_refresh_keeps_update_made_during_it(
    page: Page, make_campaign: Callable[..., Campaign], redis_client: redis.Redis
) -> None:
    campaign = make_campaign()
    assert campaign.start()
    ada, *_others = campaign.recipients.order_by("id")
    record_header_updates(page)
    page.goto(campaign.get_absolute_url())
    mark_window(page)
    wait_for_snapshot(page)
    wait_for_subscribers(redis_client, campaign.pk, count=1)
    row = page.locator(f"#{ada.dom_id}")
    expect(row).to_have_attribute("data-status", "queued")

    def deliver_while_in_transit(route: Route) -> None:
        # The page HTML is rendered now, with Ada still queued. Ada is sent
        # before the browser receives it, and the stream shows that first.
        response = route.fetch()
        try:
            assert set_outcome(ada, Recipient.Status.SENT)
            broadcasts.broadcast_recipient(ada)
        finally:
            # Playwright runs the handler in its own greenlet, where Django
            # opens a separate connection. An open connection would keep the
            # test database from being dropped at the end of the run.
            connection.close()
        expect(row).to_have_attribute("data-status", "sent")
        route.fulfill(response=response)

    page.route(f"**{campaign.get_absolute_url()}", deliver_while_in_transit)
    page.evaluate(COUNT_RENDERS)
    broadcasts.publish(campaign.pk, '<turbo-stream action="refresh"></turbo-stream>')
    page.wait_for_function("() => window.__renders > 0", timeout=10_000)

    # It should show Ada as sent once the refresh is done, as the database does.
    expect(row).to_have_attribute("data-status", "sent", timeout=10_000)
    expect(row.locator(".badge")).to_have_text("Sent")
    expect_no_page_load(page)
