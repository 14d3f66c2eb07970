"""Page helpers shared by the browser tests, named after what a user sees and does."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from campaigns.models import Campaign

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


def wait_for_stream(page: Page, timeout_ms: float = 10_000) -> None:
    """Wait until the page's live stream is connected.

    The page's stream starts at the stream position that the page was
    rendered at, so it delivers every later change whenever it connects.
    Tests wait for it when what they do next needs a connection, such as
    cutting it, or to watch a dispatch from its start.
    """
    page.wait_for_function(
        """() => document.querySelector("turbo-stream-source")
                   ?.streamSource?.readyState === EventSource.OPEN""",
        timeout=timeout_ms,
    )


# An init script: counts the connections that the page's event sources open,
# and keeps the data of each message and the target of each Turbo Stream
# that is about to render, on `window.__stream`. It lasts until a page load.
RECORD_STREAM_ACTIVITY = """
window.__stream = { opens: 0, messages: [], targets: [] }
const NativeEventSource = window.EventSource
window.EventSource = class extends NativeEventSource {
  constructor(...args) {
    super(...args)
    this.addEventListener("open", () => { window.__stream.opens += 1 })
    this.addEventListener("message", (event) => { window.__stream.messages.push(event.data) })
  }
}
document.addEventListener("turbo:before-stream-render", (event) => {
  const target = event.target.getAttribute("target")
  if (target) window.__stream.targets.push(target)
})
"""


def record_stream_activity(page: Page) -> None:
    """Record stream connections, messages and render targets on every document `page` loads."""
    page.add_init_script(RECORD_STREAM_ACTIVITY)


def stream_opens(page: Page) -> int:
    """How many times the page's event sources connected, reconnects included."""
    return int(page.evaluate("window.__stream.opens"))


def stream_messages(page: Page) -> list[str]:
    """The data of every message the page's event sources received, oldest first."""
    return list(page.evaluate("window.__stream.messages"))


def stream_targets(page: Page) -> list[str]:
    """The element id that each Turbo Stream rendered on the page targets, oldest first."""
    return list(page.evaluate("window.__stream.targets"))


# Returns what the campaign header with this id shows.
READ_HEADER = """
(id) => {
  const header = document.getElementById(id)
  return {
    status: header.dataset.campaignStatus,
    version: header.dataset.version ?? null,
    counts: Object.fromEntries(
      [...header.querySelectorAll("[data-count]")].map((count) => [
        count.dataset.count, Number(count.textContent),
      ])
    ),
    percent: header.querySelector("[data-progress-percent]").textContent.trim(),
  }
}
"""


def header_on_page(page: Page, campaign: Campaign) -> dict[str, Any]:
    """The status, version, counts and percentage that the page's header shows."""
    return dict(page.evaluate(READ_HEADER, f"{campaign.dom_id}_header"))


def header_in_database(campaign: Campaign) -> dict[str, Any]:
    """What the campaign's header should show now: its status, counts and percentage."""
    campaign = Campaign.objects.get(pk=campaign.pk)
    progress = campaign.progress()
    counts = {
        "total": progress.total,
        "queued": progress.queued,
        "in_flight": progress.in_flight,
        "sent": progress.sent,
        "failed": progress.failed,
        "cancelled": progress.cancelled,
        "suppressed": progress.suppressed,
    }
    return {"status": campaign.status, "counts": counts, "percent": f"{progress.percent}%"}


def expect_header(page: Page, campaign: Campaign, timeout_ms: float) -> None:
    """Wait until the page's header shows what the database contains at the same moment.

    Both sides are read again every 50 ms, so the database may still change
    while the page catches up, as claims do in the middle of a dispatch.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        expected = header_in_database(campaign)
        displayed = header_on_page(page, campaign)
        del displayed["version"]
        if displayed == expected:
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"the header shows {displayed} after {timeout_ms} ms, expected {expected}")
        time.sleep(0.05)


# Returns [status, version] of each recipient row whose id is given, or null
# for a row that the page does not show.
READ_ROWS = """
(ids) => ids.map((id) => {
  const row = document.getElementById(`recipient_${id}`)
  return row ? [row.dataset.status, Number(row.dataset.version)] : null
})
"""


def rows_on_page(page: Page, ids: Iterable[int]) -> dict[int, tuple[str, int] | None]:
    """The status and version that each recipient's row shows, or None for a row not shown."""
    ids = list(ids)
    shown = page.evaluate(READ_ROWS, ids)
    return {pk: tuple(row) if row else None for pk, row in zip(ids, shown, strict=True)}


def expect_rows(page: Page, expected: dict[int, tuple[str, int]], timeout_ms: float) -> None:
    """Wait until each recipient row shows the status and version in `expected`, by id."""
    ids = list(expected)
    expected_rows = [list(expected[pk]) for pk in ids]
    try:
        page.wait_for_function(
            f"([ids, expected]) => JSON.stringify(({READ_ROWS})(ids)) === JSON.stringify(expected)",
            arg=[ids, expected_rows],
            timeout=timeout_ms,
        )
    except PlaywrightTimeoutError:
        differences = {
            pk: {"displayed": row, "expected": expected[pk]}
            for pk, row in rows_on_page(page, ids).items()
            if row != expected[pk]
        }
        pytest.fail(f"rows differ after {timeout_ms} ms: {differences}")
