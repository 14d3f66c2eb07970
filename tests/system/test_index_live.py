"""The campaigns index follows a dispatch live, without a reload."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery.worker import WorkController
from playwright.sync_api import Page, expect
from pytest_django.fixtures import Settings

from campaigns.models import Campaign
from tests.system.browser import expect_no_page_load, mark_window

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

# An init script: from the first document on, records on `window.__summaryUpdates`
# the row id, status and percentage of every index row that a Turbo Stream is
# about to render.
RECORD_SUMMARY_UPDATES = """
window.__summaryUpdates = []
document.addEventListener("turbo:before-stream-render", (event) => {
  const row = event.target.querySelector("template")?.content.firstElementChild
  if (row?.id?.endsWith("_summary")) {
    const percent = row.querySelector("[data-progress-percent]").textContent.trim()
    window.__summaryUpdates.push([row.id, row.dataset.campaignStatus, percent])
  }
})
"""


def summary_updates(page: Page, campaign: Campaign) -> list[tuple[str, int]]:
    """The recorded (status, percent) pairs of the campaign's row, oldest first."""
    updates = page.evaluate("window.__summaryUpdates")
    return [
        (status, int(percent.removesuffix("%")))
        for row_id, status, percent in updates
        if row_id == f"{campaign.dom_id}_summary"
    ]


def test_index_follows_dispatch(
    page: Page,
    celery_worker: WorkController,
    settings: Settings,
    make_campaign: Callable[..., Campaign],
) -> None:
    # Simulated deliveries of at least 0.1 s, one at a time, each written and
    # announced on its own. Six take at least 0.6 s, and the index gets an
    # event at most every 0.2 s, so it shows the campaign processing before
    # it completes. The in-process worker reads these settings when it runs a task.
    settings.DELIVERY_DELAY_MIN_SECONDS = 0.1
    settings.DELIVERY_DELAY_MAX_SECONDS = 0.15
    settings.DELIVERY_CONCURRENCY = 1
    settings.DISPATCH_WORKERS_PER_CAMPAIGN = 1
    settings.DISPATCH_FLUSH_SIZE = 1

    idle = make_campaign(name="Idle campaign")
    campaign = make_campaign(
        name="Spring launch",
        recipients=[
            {"name": "Ada", "email": "ada@example.com"},
            {"name": "Bounce", "email": "bounce@fail.example.com"},
            {"name": "Grace", "email": "grace@example.com"},
            {"name": "Alan", "email": "alan@example.com"},
            {"name": "Edsger", "email": "edsger@example.com"},
            {"name": "Barbara", "email": "barbara@example.com"},
        ],
    )

    page.add_init_script(RECORD_SUMMARY_UPDATES)
    page.goto("/")
    mark_window(page)
    row = page.locator(f"#{campaign.dom_id}_summary")
    expect(row.locator(".badge")).to_have_text("Pending")
    # The stream reads its position in the campaigns' streams before it sends
    # their current rows, so no change after this first event is missed.
    page.wait_for_function("() => window.__summaryUpdates.length >= 2", timeout=5000)
    assert summary_updates(page, campaign) == [("pending", 0)]

    operator = page.context.new_page()
    operator.goto(campaign.get_absolute_url())
    operator.get_by_role("button", name="Dispatch").click()

    # It should end showing the campaign completed with its final counts.
    expect(row.locator(".badge")).to_have_text("Completed")
    expect(row.locator("[data-progress-percent]")).to_have_text("100%")
    expect(row.locator("progress")).to_have_attribute("value", "6")
    expect(row.locator("progress")).to_have_attribute("max", "6")
    expect(row.locator("[data-count='sent']")).to_have_text("5")
    expect(row.locator("[data-count='failed']")).to_have_text("1")
    expect(row.locator("[data-count='total']")).to_have_text("6")
    expect_no_page_load(page)

    # It should have shown the campaign processing first, and never gone backwards.
    updates = summary_updates(page, campaign)
    statuses = [status for status, _ in updates]
    percents = [percent for _, percent in updates]
    assert statuses[-1] == "completed", updates
    assert "processing" in statuses, updates
    assert statuses.index("processing") < statuses.index("completed"), updates
    assert percents == sorted(percents), updates

    # It should leave the other campaign's row as it was.
    idle_row = page.locator(f"#{idle.dom_id}_summary")
    expect(idle_row.locator(".badge")).to_have_text("Pending")
    assert summary_updates(page, idle) == [("pending", 0)]
