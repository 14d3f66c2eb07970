"""Cancel and Retry failed refresh every other open page, but not the page that pressed them.

Both actions change many rows at once, so the broadcast task publishes a
Turbo `refresh` stream. The page that pressed the button already shows the
new state with a flash message, and a refresh would morph that message away.
The stream carries the request id of the button's request, and Turbo 8
ignores a refresh that names a request the page made itself.

No Celery worker runs here. The test runs the broadcast task that the view
enqueued only once the pressing page shows its message and streams again. A
refresh that arrived earlier, while that page still followed the redirect or
between two of its streams, would be lost even without the request id, and
the test could not fail.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from django.conf import settings
from playwright.sync_api import Dialog, Page, expect

from campaigns.models import Campaign, Recipient
from live.tasks import broadcast_campaign_task
from tests.outcomes import set_outcome
from tests.system.browser import (
    record_header_updates,
    wait_for_snapshot,
    wait_for_subscribers,
)

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
        message=(
            "Cancelled. Queued recipients will not be sent; deliveries in flight keep "
            "their outcome."
        ),
        status_after="cancelled",
        prepare=start,
    ),
    "retry_failed": Action(
        button="Retry failed",
        message="1 failed recipient queued again.",
        status_after="processing",
        prepare=complete_with_transient_failure,
    ),
}


def watch(page: Page, campaign: Campaign) -> None:
    record_header_updates(page)
    page.goto(campaign.get_absolute_url())
    # Turbo visits keep `window`, so the hook lasts until a page load.
    page.evaluate(RECORD_REFRESHES)
    wait_for_snapshot(page)


def run_broadcast_jobs(job_queue: JobQueue) -> list[dict[str, Any]]:
    """Run the broadcast tasks waiting in the control queue, in this process; return their kwargs.

    The message body is Celery's JSON `[args, kwargs, embed]`, in base64.
    """
    ran = []
    for job in job_queue(settings.DISPATCH_CONTROL_QUEUE):
        if job["headers"]["task"] != broadcast_campaign_task.name:
            continue
        args, kwargs, _embed = json.loads(base64.b64decode(job["body"]))
        broadcast_campaign_task(*args, **kwargs)
        ran.append(kwargs)
    return ran


def refreshes(page: Page) -> list[bool]:
    """Wait until `page` has performed a refresh stream; return whether each started a visit."""
    page.wait_for_function("() => window.__refreshes.length > 0", timeout=TIMEOUT_MS)
    return page.evaluate("window.__refreshes")


@pytest.mark.parametrize("action_name", list(ACTIONS))
def test_pressing_page_keeps_its_message(
    page: Page,
    make_campaign: MakeCampaign,
    redis_client: redis.Redis,
    job_queue: JobQueue,
    action_name: str,
) -> None:
    action = ACTIONS[action_name]
    campaign = make_campaign()
    action.prepare(campaign)
    second_page = page.context.new_page()
    for viewer in (page, second_page):
        watch(viewer, campaign)
    wait_for_subscribers(redis_client, campaign.pk, count=2)

    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.on("dialog", accept)
    # A DOM click, because Playwright's click waits for animation frames,
    # which Chromium does not run for this page while the second is in front.
    button = page.locator(f"#{campaign.dom_id}_header").get_by_role("button", name=action.button)
    button.dispatch_event("click")
    flash = page.get_by_role("status")
    expect(flash).to_have_text(action.message)
    # The page rendered after the redirect opens a new stream, whose snapshot
    # shows the new status once that stream is subscribed.
    page.wait_for_function(
        f"() => window.__headerUpdates.some(([status]) => status === '{action.status_after}')",
        timeout=TIMEOUT_MS,
    )

    broadcasts = run_broadcast_jobs(job_queue)

    assert [kwargs["refresh"] for kwargs in broadcasts] == [True]
    # It should skip the refresh on the pressing page and keep its message.
    assert refreshes(page) == [False]
    expect(flash).to_have_text(action.message)
    # It should refresh the second page, which then shows the new rows.
    assert refreshes(second_page) == [True]
    second_header = second_page.locator(f"#{campaign.dom_id}_header")
    expect(second_header).to_have_attribute("data-campaign-status", action.status_after)
    expected_rows = dict(campaign.recipients.values_list("id", "status"))
    for recipient_id, status in expected_rows.items():
        row = second_page.locator(f"#recipient_{recipient_id}")
        expect(row).to_have_attribute("data-status", status, timeout=TIMEOUT_MS)
    expect(second_page.get_by_role("status")).to_have_count(0)
