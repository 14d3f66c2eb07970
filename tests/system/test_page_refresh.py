"""A morphing refresh of the campaign page must not leave it older than its stream.

After Pause, Resume, Cancel or Dispatch, Turbo follows the redirect back to
the same URL and morphs the page into the HTML that the server rendered
then. A `refresh` Turbo Stream does the same. That HTML lacks any update that
the stream applied while it was in transit. Two things keep the page
current: the morph keeps a row whose data-version is higher than the
fetched one (frontend/versions.js), and the fetched page's new stream starts
at the position the HTML was rendered at, so it delivers the update again.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from playwright.sync_api import Page, Route, expect

from campaigns.models import Campaign, Recipient
from live import broadcasts
from tests.outcomes import set_outcome
from tests.system.browser import (
    expect_no_page_load,
    mark_window,
    wait_for_stream,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

# Records, at each Turbo render (a morph is one), the status that Ada's row
# shows at that moment, on `window.__statusesAtRender`. A stream message
# renders a frame later, so these are what the morph itself left.
RECORD_STATUS_AT_RENDER = """(rowId) => {
  window.__statusesAtRender = []
  document.addEventListener("turbo:render", () => {
    window.__statusesAtRender.push(document.getElementById(rowId)?.dataset.status ?? null)
  })
}"""


def test_refresh_keeps_update_made_during_it(
    page: Page, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = make_campaign()
    assert campaign.start()
    ada, *_others = campaign.recipients.order_by("id")
    page.goto(campaign.get_absolute_url())
    mark_window(page)
    wait_for_stream(page)
    row = page.locator(f"#{ada.dom_id}")
    expect(row).to_have_attribute("data-status", "queued")

    def deliver_while_in_transit(route: Route) -> None:
        # The page HTML is rendered now, with Ada still queued. Ada is sent
        # before the browser receives it, and the stream shows that first.
        response = route.fetch()
        try:
            assert set_outcome(ada, Recipient.Status.SENT)
            broadcasts.broadcast_recipients(campaign.pk, [ada])
        finally:
            # Playwright runs the handler in its own greenlet, where Django
            # opens a separate connection. An open connection would keep the
            # test database from being dropped at the end of the run.
            connection.close()
        expect(row).to_have_attribute("data-status", "sent")
        route.fulfill(response=response)

    page.route(f"**{campaign.get_absolute_url()}", deliver_while_in_transit)
    page.evaluate(RECORD_STATUS_AT_RENDER, ada.dom_id)
    broadcasts.broadcast_refresh(campaign.pk)
    page.wait_for_function("() => window.__statusesAtRender.length > 0", timeout=10_000)

    # It should keep Ada as sent through the morph into the older HTML.
    assert page.evaluate("window.__statusesAtRender") == ["sent"]
    # It should show Ada as sent once the refresh is done, as the database does.
    expect(row).to_have_attribute("data-status", "sent", timeout=10_000)
    expect(row.locator(".badge")).to_have_text("Sent")
    expect_no_page_load(page)
