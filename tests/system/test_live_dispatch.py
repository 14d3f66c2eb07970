"""Create a campaign in the browser, dispatch it, and watch two pages update live."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Campaign, Recipient
from tests.servers import PROJECT_ROOT
from tests.system.browser import (
    add_row,
    campaign_id_from_url,
    expect_no_page_load,
    expect_rows_numbered,
    fill_row,
    header_updates,
    mark_window,
    recipient_rows,
    record_header_updates,
    remove_row,
    wait_for_stream,
)
from tests.system.delivery import DeliveryGate

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

SCREENSHOT_PATH = PROJECT_ROOT / "var" / "screenshots" / "live-dispatch.png"

# Milliseconds for an outcome to reach a page: a flush of the worker loop
# (0.2 s), a stream read and an event (0.1 s), with a wide margin for a busy
# machine.
UPDATE_TIMEOUT_MS = 15_000


def test_dispatch_updates_two_pages_live(page: Page, delivery_gate: DeliveryGate) -> None:
    record_header_updates(page)
    page.goto("/campaigns/new")
    mark_window(page)
    page.get_by_label("Campaign name").fill("Spring launch")
    page.get_by_label("Email subject").fill("News for {{ first_name }}")
    page.get_by_label("Email text").fill("Hello {{ name }}")
    page.get_by_label("SMS text").fill("Hello {{ first_name }}")
    fill_row(recipient_rows(page).nth(0), name="Ada Lovelace", email="ada@example.com")
    add_row(page, name="Removed Row", email="removed@example.com")
    add_row(page, name="Bounce", email="bounce@fail.example.com")
    add_row(page, name="Grace Hopper", phone="+1 (202) 555-0101")

    remove_row(recipient_rows(page).nth(1))

    # It should renumber the rows after the removed one, so Django reads 0, 1, 2.
    expect_rows_numbered(page, 3)

    page.get_by_role("button", name="Create campaign").click()

    # It should show the new campaign with its three recipients, all queued.
    campaign_id = campaign_id_from_url(page)
    expect(page.get_by_role("status")).to_have_text("Campaign “Spring launch” created.")
    campaign = Campaign.objects.get(pk=campaign_id)
    assert campaign.name == "Spring launch"
    assert campaign.status == Campaign.Status.PENDING
    ada, bounce, grace = campaign.recipients.order_by("id")
    assert (ada.name, ada.email, ada.phone_number) == ("Ada Lovelace", "ada@example.com", "")
    assert (bounce.name, bounce.email, bounce.phone_number) == (
        "Bounce",
        "bounce@fail.example.com",
        "",
    )
    assert (grace.name, grace.email, grace.phone_number) == ("Grace Hopper", "", "+12025550101")
    assert {r.status for r in (ada, bounce, grace)} == {Recipient.Status.QUEUED}
    table_rows = page.locator(f"#campaign_{campaign_id}_recipients tr")
    expect(table_rows).to_have_count(3)
    expect(table_rows.nth(0)).to_contain_text("Ada Lovelace")
    expect(table_rows.nth(1)).to_contain_text("bounce@fail.example.com")
    expect(table_rows.nth(2)).to_contain_text("+12025550101")

    # A second page on the same campaign, which only the stream can update.
    second_page = page.context.new_page()
    record_header_updates(second_page)
    second_page.goto(f"/campaigns/{campaign_id}")
    mark_window(second_page)
    for viewer in (page, second_page):
        wait_for_stream(viewer)

    page.get_by_role("button", name="Dispatch").click()

    # It should show the first outcome on the second page while the other
    # two wait at the gate.
    delivery_gate.allow(1)
    second_header = second_page.locator(f"#campaign_{campaign_id}_header")
    expect(second_header.locator("[data-progress-percent]")).to_have_text(
        "33%", timeout=UPDATE_TIMEOUT_MS
    )
    expect(second_header.locator(".badge")).to_have_text("Processing")

    delivery_gate.allow(2)
    for viewer in (page, second_page):
        # It should show each recipient's outcome, the failure with its reason.
        expected_rows = [
            (ada, "sent", "Sent"),
            (bounce, "failed", "Failed"),
            (grace, "sent", "Sent"),
        ]
        for recipient, status, label in expected_rows:
            row = viewer.locator(f"#{recipient.dom_id}")
            expect(row).to_have_attribute("data-status", status, timeout=UPDATE_TIMEOUT_MS)
            expect(row.locator(".badge")).to_have_text(label)
        expect(viewer.locator(f"#{bounce.dom_id}")).to_contain_text(
            "mailbox unavailable at fail.example.com (simulated)"
        )

        # It should complete the campaign in the header and offer no more dispatch.
        header = viewer.locator(f"#campaign_{campaign_id}_header")
        expect(header.locator(".badge")).to_have_text("Completed", timeout=UPDATE_TIMEOUT_MS)
        expect(header.locator("[data-progress-percent]")).to_have_text("100%")
        expect(header.locator("[data-count='sent']")).to_have_text("2")
        expect(header.locator("[data-count='failed']")).to_have_text("1")
        expect(header.locator("[data-count='queued']")).to_have_text("0")
        expect(header.locator("[data-count='in_flight']")).to_have_text("0")
        expect(header.locator("[data-count='cancelled']")).to_have_text("0")
        expect(viewer.get_by_role("button", name="Dispatch")).to_have_count(0)
        expect(viewer.get_by_role("link", name="Edit")).to_have_count(0)

        expect_no_page_load(viewer)

    # It should load a recipient's attempts when its details are opened.
    attempts = second_page.locator(f"#{bounce.dom_id} [data-attempts]")
    attempts.locator("summary").click()
    expect(attempts.locator("summary")).to_have_text("1 attempt")
    attempt = attempts.locator("li[data-attempt-outcome='permanent_error']")
    expect(attempt).to_contain_text("#1 Permanent error")
    expect(attempt).to_contain_text("mailbox unavailable at fail.example.com (simulated)")
    expect_no_page_load(second_page)

    # It should have shown the second page each step, from processing to
    # completed, and never a percentage lower than one it had shown.
    updates = header_updates(second_page)
    statuses = [status for status, _ in updates]
    percents = [percent for _, percent in updates]
    assert statuses[-1] == "completed", updates
    assert "processing" in statuses, updates
    assert statuses.index("processing") < statuses.index("completed"), updates
    assert percents == sorted(percents), updates
    assert 33 in percents, updates

    # It should have stored the outcomes.
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    statuses_by_id = dict(campaign.recipients.values_list("id", "status"))
    assert statuses_by_id == {
        ada.pk: Recipient.Status.SENT,
        bounce.pk: Recipient.Status.FAILED,
        grace.pk: Recipient.Status.SENT,
    }

    SCREENSHOT_PATH.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOT_PATH, full_page=True)
