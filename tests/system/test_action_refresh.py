"""Cancel and Retry failed refresh every other open page, but not the page that pressed them.

Both actions change many rows at once, so the view publishes a Turbo
`refresh` request on the campaign's stream. The page that pressed the button
already shows the new state with a flash message, and a refresh would morph
that message away. The stream carries the request id of the button's
request, and Turbo 8 ignores a refresh that names a request the page made
itself.

The pressing page can only receive that refresh on the stream it had before
the press: the page rendered after the redirect starts its stream after the
refresh. So the test delays the action's response until the old stream has
delivered the refresh and Turbo has decided on it. Without the hold, the
redirect could replace the old stream first, and the test could not fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Dialog, Page, Route, expect
from pytest_playwright.pytest_playwright import CreateContextCallback

from campaigns.models import Campaign, Recipient
from tests.outcomes import set_outcome
from tests.system.browser import wait_for_stream

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

MakeCampaign = Callable[..., Campaign]
JobQueue = Callable[..., list[dict[str, Any]]]

TIMEOUT_MS = 10_000

# Evaluated once Turbo has loaded. For each refresh that Turbo decides on,
# records on `window.__refreshes` whether it started a visit. Turbo 8.0
# debounces `Turbo.session.refresh` by 150 ms, so the stream action returns
# before that decision. The hook wraps the undebounced method
# (`debouncedRefresh`, which the `pageRefreshDebouncePeriod` setter wraps
# again), an internal of Turbo 8.0 that package-lock.json pins. Turbo starts
# a visit, and fires `turbo:visit`, before that method returns.
RECORD_REFRESHES = """() => {
  window.__refreshes = []
  window.__visits = 0
  document.addEventListener("turbo:visit", () => { window.__visits += 1 })
  const session = window.Turbo.session
  const refresh = session.debouncedRefresh
  session.debouncedRefresh = function (...args) {
    const visitsBefore = window.__visits
    refresh.apply(this, args)
    window.__refreshes.push(window.__visits > visitsBefore)
  }
  session.pageRefreshDebouncePeriod = session.pageRefreshDebouncePeriod
}"""


@dataclass(frozen=True)
class Action:
    button: str
    url_name: str
    message: str
    # The campaign status that the header shows after the action.
    status_after: str
    # Moves a new pending campaign of three recipients to where the button shows.
    prepare: Callable[[Campaign], None]


def start(campaign: Campaign) -> None:
    assert campaign.start()


def complete_with_transient_failure(campaign: Campaign) -> None:
    assert campaign.start()
    first, failed, third = campaign.recipients.order_by("id")
    assert set_outcome(first, Recipient.Status.SENT)
    assert set_outcome(failed, Recipient.Status.FAILED, "timed out", transient=True)
    assert set_outcome(third, Recipient.Status.SENT)
    assert campaign.complete()


ACTIONS = {
    "cancel": Action(
        button="Cancel",
        url_name="campaigns:cancel",
        message=(
            "Cancelled. Queued recipients will not be sent; deliveries in flight keep "
            "their outcome."
        ),
        status_after="cancelled",
        prepare=start,
    ),
    "retry_failed": Action(
        button="Retry failed",
        url_name="campaigns:retry_failed",
        message="1 failed recipient queued again.",
        status_after="processing",
        prepare=complete_with_transient_failure,
    ),
}


def watch(page: Page, campaign: Campaign) -> None:
    page.goto(campaign.get_absolute_url())
    # Turbo visits keep `window`, so the hook lasts until a page load.
    page.evaluate(RECORD_REFRESHES)
    wait_for_stream(page)


def refreshes(page: Page) -> list[bool]:
    """Wait until `page` has performed a refresh stream; return whether each started a visit."""
    page.wait_for_function("() => window.__refreshes.length > 0", timeout=TIMEOUT_MS)
    return page.evaluate("window.__refreshes")


@pytest.mark.parametrize("action_name", list(ACTIONS))
def test_pressing_page_keeps_its_message(
    page: Page,
    new_context: CreateContextCallback,
    make_campaign: MakeCampaign,
    job_queue: JobQueue,
    action_name: str,
) -> None:
    # No worker runs here: job_queue empties this run's queues after the
    # test, so the job that Retry failed enqueues reaches no later test.
    action = ACTIONS[action_name]
    campaign = make_campaign()
    action.prepare(campaign)
    # Another operator's page, with a session of its own: the flash message
    # of the press belongs to the pressing page's session only.
    second_page = new_context().new_page()
    for viewer in (page, second_page):
        watch(viewer, campaign)
    refreshes_before_redirect: list[list[bool]] = []

    def hold_response_until_refresh_decided(route: Route) -> None:
        # The view has committed and published the refresh when its
        # response (a 303) arrives here. The browser follows the redirect
        # only after the page's current stream has delivered the refresh.
        response = route.fetch(max_redirects=0)
        refreshes_before_redirect.append(refreshes(page))
        route.fulfill(response=response)

    page.route(
        f"**{reverse(action.url_name, args=[campaign.pk])}", hold_response_until_refresh_decided
    )

    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.on("dialog", accept)
    # A DOM click, because Playwright's click waits for animation frames,
    # which Chromium may not run for this page while the second is in front.
    button = page.locator(f"#{campaign.dom_id}_header").get_by_role("button", name=action.button)
    button.dispatch_event("click")
    flash = page.get_by_role("status")
    expect(flash).to_have_text(action.message)

    # It should skip the refresh on the pressing page and keep its message.
    assert refreshes_before_redirect == [[False]]
    assert page.evaluate("window.__refreshes") == [False]
    expect(flash).to_have_text(action.message)
    header = page.locator(f"#{campaign.dom_id}_header")
    expect(header).to_have_attribute("data-campaign-status", action.status_after)
    # It should refresh the second page, which then shows the new rows.
    assert refreshes(second_page) == [True]
    second_header = second_page.locator(f"#{campaign.dom_id}_header")
    expect(second_header).to_have_attribute("data-campaign-status", action.status_after)
    expected_rows = dict(campaign.recipients.values_list("id", "status"))
    for recipient_id, status in expected_rows.items():
        row = second_page.locator(f"#recipient_{recipient_id}")
        expect(row).to_have_attribute("data-status", status, timeout=TIMEOUT_MS)
    expect(second_page.get_by_role("status")).to_have_count(0)
