"""Import a CSV file in the browser: upload, confirm the columns, watch progress, get the report."""

from __future__ import annotations

import csv
import io
import threading
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import FilePayload, Page, expect

from campaigns.models import Campaign, Recipient
from config.celery import app as celery_app
from imports import jobs
from imports.models import ImportIssue, RecipientImport
from tests.factories import operator_workspace

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

# Milliseconds for the job to start, finish and reach the page, with a wide
# margin for a busy machine.
IMPORT_TIMEOUT_MS = 20_000

CSV = (
    b"Name,Email,Phone\n"
    b"Grace Hopper,grace@example.com,\n"
    b"Bad Row,not-an-email,\n"
    b"Ada Again,ADA@example.com,\n"
    b"Alan Turing,alan@example.com,+1 202 555 0102\n"
)

# An init script: records the status of every import panel that a Turbo
# Stream is about to render, on `window.__importUpdates`.
RECORD_IMPORT_UPDATES = """
window.__importUpdates = []
document.addEventListener("turbo:before-stream-render", (event) => {
  const element = event.target.querySelector("template")?.content.firstElementChild
  if (element?.dataset.importStatus) window.__importUpdates.push(element.dataset.importStatus)
})
"""


class MergeGate:
    """Holds the import job between reading the file and adding its rows, until opened.

    The job runs in this process's worker thread, so the page shows the
    running state before the import completes.
    """

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.merge = jobs._merge

    def __call__(self, *args: Any) -> None:
        # A bound wait, so that a failed test cannot leave the worker hanging.
        self.opened.wait(timeout=IMPORT_TIMEOUT_MS / 1000)
        self.merge(*args)


def test_import_csv_with_live_progress(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = MergeGate()
    monkeypatch.setattr(jobs, "_merge", gate)
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Autumn")
    Recipient.objects.create(campaign=campaign, name="Ada", email="ada@example.com")
    page.add_init_script(RECORD_IMPORT_UPDATES)

    page.goto(campaign.get_absolute_url())
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("CSV file").set_input_files(
        files=FilePayload(name="people.csv", mimeType="text/csv", buffer=CSV)
    )
    page.get_by_role("button", name="Upload").click()

    # The mapping page shows the guessed columns.
    expect(page.get_by_role("heading", name="Choose the columns to import")).to_be_visible()
    expect(page.get_by_label("Email", exact=True)).to_have_value("1")
    expect(page.get_by_label("Name", exact=True)).to_have_value("0")
    expect(page.locator("[data-sample-row]")).to_have_count(4)
    page.get_by_role("button", name="Import recipients").click()

    # No worker runs yet, so the import waits, queued, and the page's stream
    # connects before the job starts: every later state comes through it.
    recipient_import = RecipientImport.objects.get()
    panel = page.locator(f"#{recipient_import.dom_id}")
    expect(panel).to_have_attribute("data-import-status", "queued")
    expect(page.get_by_role("button", name="Cancel import")).to_be_visible()
    page.wait_for_function(
        """() => document.querySelector("turbo-stream-source")
                   ?.streamSource?.readyState === EventSource.OPEN"""
    )

    with start_worker(
        celery_app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING"
    ):
        try:
            # The whole file is read, and the job waits at the gate.
            expect(panel).to_have_attribute(
                "data-import-status", "running", timeout=IMPORT_TIMEOUT_MS
            )
            expect(panel.locator("[data-import-count='read']")).to_have_text(
                "4", timeout=IMPORT_TIMEOUT_MS
            )
            expect(panel.locator("[data-import-count='invalid']")).to_have_text("1")
            expect(panel.locator("progress")).to_have_attribute("value", "100")
        finally:
            gate.opened.set()
        expect(panel).to_have_attribute(
            "data-import-status", "completed", timeout=IMPORT_TIMEOUT_MS
        )

    # The running panel came through the page's stream.
    assert "running" in page.evaluate("window.__importUpdates")
    recipient_import.refresh_from_db()
    assert (recipient_import.rows_read, recipient_import.rows_added) == (4, 2)
    assert (recipient_import.rows_invalid, recipient_import.rows_duplicate) == (1, 1)
    expect(panel.locator("[data-import-count='added']")).to_have_text("2")
    expect(panel.locator("[data-import-count='duplicate']")).to_have_text("1")
    expect(panel.locator("[data-import-count='invalid']")).to_have_text("1")
    expect(panel.locator("[data-report-line]")).to_have_count(2)
    expect(panel.locator("[data-report-line='3']")).to_contain_text("not-an-email")
    expect(panel.locator("[data-report-line='4']")).to_contain_text("ADA@example.com")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the full report (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == "people-report.csv"
    text = download.path().read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    issues = ImportIssue.objects.filter(recipient_import=recipient_import).order_by("line")
    assert rows == [
        ["line", "kind", "name", "email", "phone", "reason"],
        *[
            [str(issue.line), issue.kind, issue.name, issue.email, issue.phone, issue.reason]
            for issue in issues
        ],
    ]
    assert [row[:2] for row in rows[1:]] == [["3", "invalid"], ["4", "duplicate"]]
    emails = Campaign.objects.get(pk=campaign.pk).recipients.values_list("email", flat=True)
    assert sorted(emails) == ["ada@example.com", "alan@example.com", "grace@example.com"]
