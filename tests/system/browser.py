"""Page helpers shared by the browser tests, named after what a user sees and does."""

from __future__ import annotations

import re

import redis
from playwright.sync_api import Locator, Page, expect

from live import broadcasts
from tests.servers import wait_until

# The formset prefix of the recipient rows (Recipient.campaign's related_name).
PREFIX = "recipients"

# Set on `window` by `mark_window`. A full page load removes it, a Turbo visit does not.
MARKER = "__marker"


def recipient_rows(page: Page) -> Locator:
    """Every recipient row of the campaign form, including saved rows hidden by Remove."""
    return page.locator("[data-recipients-target~='row']")


def fill_row(row: Locator, name: str = "", email: str = "", phone: str = "") -> None:
    row.get_by_label("Name").fill(name)
    row.get_by_label("Email").fill(email)
    row.get_by_label("Phone").fill(phone)


def add_row(page: Page, name: str = "", email: str = "", phone: str = "") -> Locator:
    """Click "Add recipient" and fill the row it appends."""
    rows = recipient_rows(page)
    count = rows.count()
    page.get_by_role("button", name="Add recipient").click()
    expect(rows).to_have_count(count + 1)
    row = rows.nth(count)
    fill_row(row, name, email, phone)
    return row


def remove_row(row: Locator) -> None:
    row.get_by_role("button", name="Remove recipient").click()


# Returns, for each recipient row, the names, ids and label targets of its
# form fields and the row number it shows.
READ_ROW_INDEXES = """
(rows) => rows.map((row) => ({
  names: [...row.querySelectorAll("[name]")].map((element) => element.name),
  ids: [...row.querySelectorAll("input[id]")].map((element) => element.id),
  labels: [...row.querySelectorAll("label[for]")].map((label) => label.htmlFor),
  // A row marked for deletion is hidden and keeps whatever number it had.
  number: row.classList.contains("hidden")
    ? null
    : row.querySelector("[data-recipients-target~='number']").textContent,
}))
"""

ROW_FIELDS = ("id", "campaign", "name", "email", "phone_number", "DELETE")
VISIBLE_ROW_FIELDS = ("name", "email", "phone_number")


def expect_rows_numbered(page: Page, count: int, hidden: tuple[int, ...] = ()) -> None:
    """Expect `count` rows whose fields and labels use indexes 0 to count - 1.

    Visible rows are numbered 1, 2, 3 … on the page; the rows at the indexes in
    `hidden` are marked for deletion, hidden, and skipped by that numbering.
    """
    rows = recipient_rows(page)
    expect(rows).to_have_count(count)
    expected = []
    visible_number = 0
    for index in range(count):
        if index not in hidden:
            visible_number += 1
        expected.append(
            {
                "names": [f"{PREFIX}-{index}-{field}" for field in ROW_FIELDS],
                "ids": [f"id_{PREFIX}-{index}-{field}" for field in ROW_FIELDS],
                "labels": [f"id_{PREFIX}-{index}-{field}" for field in VISIBLE_ROW_FIELDS],
                "number": None if index in hidden else str(visible_number),
            }
        )
    assert rows.evaluate_all(READ_ROW_INDEXES) == expected
    expect(page.locator(f"input[name='{PREFIX}-TOTAL_FORMS']")).to_have_value(str(count))


def mark_window(page: Page) -> None:
    page.evaluate(f"window.{MARKER} = true")


def expect_no_page_load(page: Page) -> None:
    """Fail if the page was loaded again since `mark_window`."""
    assert page.evaluate(f"window.{MARKER}") is True, f"{page.url} was loaded again"


def campaign_id_from_url(page: Page) -> int:
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    match = re.search(r"/campaigns/(\d+)$", page.url)
    assert match is not None
    return int(match.group(1))


# An init script: from the first document on, records on `window.__headerUpdates`
# the status and percentage of every campaign header that a Turbo Stream is
# about to render. Turbo visits keep `document`, so the list lives until a page load.
RECORD_HEADER_UPDATES = """
window.__headerUpdates = []
document.addEventListener("turbo:before-stream-render", (event) => {
  const element = event.target.querySelector("template")?.content.firstElementChild
  if (element?.dataset.campaignStatus) {
    const percent = element.querySelector("[data-progress-percent]").textContent.trim()
    window.__headerUpdates.push([element.dataset.campaignStatus, percent])
  }
})
"""


def record_header_updates(page: Page) -> None:
    """Record header updates from streams on every document `page` loads from now on."""
    page.add_init_script(RECORD_HEADER_UPDATES)


def header_updates(page: Page) -> list[tuple[str, int]]:
    """The recorded (status, percent) pairs, oldest first."""
    updates = page.evaluate("window.__headerUpdates")
    return [(status, int(percent.removesuffix("%"))) for status, percent in updates]


def wait_for_snapshot(page: Page) -> None:
    """Wait until the page has rendered the snapshot that its stream sends first.

    The server subscribes to the campaign's channel before it sends the
    snapshot, so every later broadcast reaches the page, after the snapshot.
    Needs `record_header_updates` before the page loaded.
    """
    page.wait_for_function("() => window.__headerUpdates.length > 0", timeout=5000)


def wait_for_subscribers(client: redis.Redis, campaign_id: int, count: int) -> None:
    """Wait until at least `count` streams on the server subscribe to the campaign's channel.

    The server subscribes before it reads and sends the snapshot, so from then
    on every broadcast reaches those pages.
    """
    channel = broadcasts.channel_name(campaign_id)

    def subscribed() -> bool:
        [(_, subscribers)] = client.pubsub_numsub(channel)
        return int(subscribers) >= count

    wait_until(subscribed, timeout=5, failure_message=f"fewer than {count} streams on {channel}")
