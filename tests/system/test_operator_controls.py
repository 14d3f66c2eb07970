"""Pause, resume and cancel a campaign from the browser while two pages watch it live.

The in-process Celery worker delivers through the simulated provider with a
delay of 0.3 to 0.5 s per recipient, two at a time, so each test has a few
seconds to act in the middle of a dispatch. The worker reads these settings
when a task runs. uvicorn, a separate process, keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery.worker import WorkController
from playwright.sync_api import Dialog, Locator, Page, expect
from pytest_django.fixtures import Settings

from campaigns.models import Campaign, Recipient
from live import broadcasts
from tests.outcomes import set_outcome
from tests.servers import wait_until
from tests.system.browser import (
    expect_header,
    expect_no_page_load,
    mark_window,
    wait_for_stream,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

RECIPIENT_COUNT = 20

# Milliseconds to wait for the outcome of an action to reach a page: the worker's
# status check (0.2 s), the deliveries in flight (up to 0.5 s each) and the
# stream's next event and header, with a wide margin for a busy machine.
UPDATE_TIMEOUT_MS = 15_000
# Milliseconds for the rest of the campaign to be delivered after a resume: 20
# recipients, two at a time, at most 0.5 s each, with the same margin.
COMPLETION_TIMEOUT_MS = 60_000


@pytest.fixture
def slow_delivery(settings: Settings) -> None:
    """Deliver two recipients at a time, 0.3 to 0.5 s each, in one worker loop."""
    settings.DELIVERY_DELAY_MIN_SECONDS = 0.3
    settings.DELIVERY_DELAY_MAX_SECONDS = 0.5
    settings.DELIVERY_CONCURRENCY = 2
    settings.DISPATCH_BATCH_SIZE = 2
    # One loop, so that two recipients at a time is the whole campaign's pace.
    settings.DISPATCH_WORKERS_PER_CAMPAIGN = 1


@pytest.fixture
def campaign(make_campaign: Callable[..., Campaign]) -> Campaign:
    recipients = [
        {"name": f"Reader {n:02d}", "email": f"reader{n:02d}@example.com"}
        for n in range(RECIPIENT_COUNT)
    ]
    return make_campaign(name="Operator controls", recipients=recipients)


def header(viewer: Page, campaign: Campaign) -> Locator:
    return viewer.locator(f"#{campaign.dom_id}_header")


def open_two_pages(page: Page, campaign: Campaign) -> Page:
    """Open the campaign on `page` and on a second page; return the second once both stream."""
    second_page = page.context.new_page()
    for viewer in (page, second_page):
        viewer.goto(campaign.get_absolute_url())
        mark_window(viewer)
    for viewer in (page, second_page):
        wait_for_stream(viewer)
    return second_page


def dispatch_and_wait_for_first_outcome(page: Page, campaign: Campaign) -> None:
    page.get_by_role("button", name="Dispatch").click()
    sent = header(page, campaign).locator("[data-count='sent']")
    expect(sent).not_to_have_text("0", timeout=UPDATE_TIMEOUT_MS)


def press(button: Locator) -> None:
    """Click `button` with one DOM click event, which Turbo handles like a user's click.

    Playwright's click first waits for the button to stay in place for two
    animation frames, which Chromium does not run for a page in the
    background. A click event reaches the button that is in the page at that
    moment. A real press that spans a live update of the header is covered by
    `test_press_spanning_header_update`.
    """
    button.dispatch_event("click")


def recipient_statuses(campaign: Campaign) -> dict[int, str]:
    return dict(campaign.recipients.values_list("id", "status"))


def no_claims_left(campaign: Campaign) -> Callable[[], bool]:
    def check() -> bool:
        return not campaign.recipients.filter(status=Recipient.Status.IN_FLIGHT).exists()

    return check


def test_pause_and_resume_update_both_pages(
    page: Page,
    celery_worker: WorkController,
    slow_delivery: None,
    campaign: Campaign,
) -> None:
    second_page = open_two_pages(page, campaign)
    dispatch_and_wait_for_first_outcome(page, campaign)

    press(header(page, campaign).get_by_role("button", name="Pause"))

    # It should show Paused on both pages, with the reason and a Resume button.
    expect(page.get_by_role("status")).to_have_text(
        "Paused. Deliveries already in flight finish; nothing new starts."
    )
    for viewer in (page, second_page):
        viewer_header = header(viewer, campaign)
        expect(viewer_header.locator(".badge")).to_have_text("Paused", timeout=UPDATE_TIMEOUT_MS)
        expect(viewer_header.locator("[data-pause-reason]")).to_have_text(
            "Paused: paused by an operator"
        )
        expect(viewer_header.get_by_role("button", name="Resume")).to_be_visible()
        expect(viewer_header.get_by_role("button", name="Pause")).to_have_count(0)
        expect(viewer_header.get_by_role("button", name="Cancel")).to_be_visible()

    # It should stop delivering: the claims in flight finish, the rest stay queued.
    wait_until(
        no_claims_left(campaign),
        timeout=UPDATE_TIMEOUT_MS / 1000,
        failure_message="recipients still in flight after the pause",
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    queued = campaign.recipients.filter(status=Recipient.Status.QUEUED).count()
    assert 0 < queued < RECIPIENT_COUNT
    for viewer in (page, second_page):
        expect(viewer.locator("tr[data-status='queued']")).to_have_count(
            queued, timeout=UPDATE_TIMEOUT_MS
        )
        expect(viewer.locator("tr[data-status='in_flight']")).to_have_count(0)
        # It should end with the counts of the paused campaign: streams keep
        # rendering the header until one includes the last change.
        expect_header(viewer, campaign, timeout_ms=UPDATE_TIMEOUT_MS)

    # Resume from the second page, whose header only the stream has rendered.
    press(header(second_page, campaign).get_by_role("button", name="Resume"))

    # It should deliver the rest and show Completed on both pages.
    for viewer in (page, second_page):
        viewer_header = header(viewer, campaign)
        expect(viewer_header.locator(".badge")).to_have_text(
            "Completed", timeout=COMPLETION_TIMEOUT_MS
        )
        expect(viewer_header.locator("[data-count='sent']")).to_have_text(str(RECIPIENT_COUNT))
        expect(viewer_header.locator("[data-progress-percent]")).to_have_text("100%")
        expect(viewer_header.locator("[data-pause-reason]")).to_have_count(0)
        expect(viewer.locator("tr[data-status='sent']")).to_have_count(RECIPIENT_COUNT)
        expect_no_page_load(viewer)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert set(recipient_statuses(campaign).values()) == {Recipient.Status.SENT}


def test_cancel_updates_both_pages(
    page: Page,
    celery_worker: WorkController,
    slow_delivery: None,
    campaign: Campaign,
) -> None:
    second_page = open_two_pages(page, campaign)
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    dispatch_and_wait_for_first_outcome(page, campaign)

    press(header(page, campaign).get_by_role("button", name="Cancel"))

    # It should ask for confirmation, then cancel.
    expect(page.get_by_role("status")).to_have_text(
        "Cancelled. Queued recipients will not be sent; deliveries in flight keep their outcome."
    )
    assert dialogs == ["Cancel this campaign? Queued recipients will not be sent."]

    # It should show the campaign and its queued rows as cancelled on both pages.
    for viewer in (page, second_page):
        viewer_header = header(viewer, campaign)
        expect(viewer_header.locator(".badge")).to_have_text("Cancelled", timeout=UPDATE_TIMEOUT_MS)
        expect(viewer_header.get_by_role("button", name="Resume")).to_have_count(0)
        expect(viewer_header.get_by_role("button", name="Pause")).to_have_count(0)
        expect(viewer_header.get_by_role("button", name="Cancel")).to_have_count(0)
        expect(viewer.locator("tr[data-status='queued']")).to_have_count(
            0, timeout=UPDATE_TIMEOUT_MS
        )

    # It should let the deliveries in flight finish, then match the database.
    wait_until(
        no_claims_left(campaign),
        timeout=UPDATE_TIMEOUT_MS / 1000,
        failure_message="recipients still in flight after the cancel",
    )
    statuses = recipient_statuses(campaign)
    cancelled = [pk for pk, status in statuses.items() if status == Recipient.Status.CANCELLED]
    sent = [pk for pk, status in statuses.items() if status == Recipient.Status.SENT]
    assert len(cancelled) + len(sent) == RECIPIENT_COUNT, statuses
    assert cancelled, "the cancel came too late: every recipient was already sent"
    assert sent, "no recipient was sent before the cancel"
    for viewer in (page, second_page):
        for recipient_id, status in statuses.items():
            row = viewer.locator(f"#recipient_{recipient_id}")
            expect(row).to_have_attribute("data-status", status, timeout=UPDATE_TIMEOUT_MS)
        expect(viewer.locator("tr[data-status='cancelled'] .badge").first).to_have_text("Cancelled")
        expect_header(viewer, campaign, timeout_ms=UPDATE_TIMEOUT_MS)
        expect_no_page_load(viewer)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.cancelled_at is not None


def open_live_header(page: Page, campaign: Campaign) -> Locator:
    """Start the campaign, open its page with its stream connected, and return the header."""
    assert campaign.start()
    page.goto(campaign.get_absolute_url())
    wait_for_stream(page)
    return header(page, campaign)


def point_at(page: Page, target: Locator) -> None:
    """Move the mouse to the middle of `target`, without pressing."""
    box = target.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_press_spanning_header_update(page: Page, campaign: Campaign) -> None:
    # An operator presses Pause just as a live update arrives, which happens
    # several times a second during a dispatch.
    campaign_header = open_live_header(page, campaign)
    pause_button = campaign_header.get_by_role("button", name="Pause")
    point_at(page, pause_button)
    pause_button.evaluate("(button) => { button.__pressed = true }")

    page.mouse.down()
    # The update carries a new outcome, so its header differs from the page's.
    first_recipient = campaign.recipients.order_by("id").first()
    assert first_recipient is not None
    assert set_outcome(first_recipient, Recipient.Status.SENT)
    broadcasts.broadcast_campaign(campaign)
    expect(campaign_header.locator("[data-count='sent']")).to_have_text("1")
    assert pause_button.evaluate("(button) => button.__pressed === true"), (
        "the update put a new Pause button in place of the pressed one"
    )
    page.mouse.up()

    # It should pause the campaign, as a press that no update interrupts does.
    expect(page.get_by_role("status")).to_have_text(
        "Paused. Deliveries already in flight finish; nothing new starts."
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_press_spanning_status_change(page: Page, campaign: Campaign) -> None:
    # The campaign pauses itself, for example on too many failures, while an
    # operator presses Pause. The Resume button then takes the Pause button's
    # place under the pointer.
    campaign_header = open_live_header(page, campaign)
    page.evaluate(
        """() => {
          window.__submittedActions = []
          document.addEventListener("submit", (event) => {
            window.__submittedActions.push(new URL(event.target.action).pathname)
          }, true)
        }"""
    )
    point_at(page, campaign_header.get_by_role("button", name="Pause"))

    page.mouse.down()
    assert campaign.pause("3 failures since the last resume (limit 3)")
    broadcasts.broadcast_campaign(campaign)
    expect(campaign_header.get_by_role("button", name="Resume")).to_be_visible()
    page.mouse.up()

    # It should submit nothing: the pressed button is gone, and releasing the
    # mouse over the Resume button in its place does not press Resume.
    assert page.evaluate("window.__submittedActions") == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
