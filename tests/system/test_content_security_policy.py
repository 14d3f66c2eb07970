"""The strict Content-Security-Policy in Chromium: the main pages work with no violation.

A page reports each violation through a `securitypolicyviolation` listener,
and Chromium prints one console error per blocked resource, in every frame
(the sandboxed message frames run no script, so only the console sees
theirs). The tests walk the pages an operator uses, with a dispatch whose
live updates morph the page, and check that nothing was blocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from campaigns.models import Campaign, Recipient
from dispatch.mailsink import store_message
from tests.factories import MESSAGE_CONTENT, operator_workspace
from tests.security.hostile import make_hostile
from tests.security.test_escaping_pages import captured_message
from tests.system.browser import add_row, recipient_rows, remove_row, wait_for_stream
from tests.system.delivery import DeliveryGate

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

# Milliseconds for the dispatch's outcomes to reach the page (see test_live_dispatch.py).
UPDATE_TIMEOUT_MS = 15_000

# An init script: reports each violation in the document to the test, and
# keeps the document's own on `window.__violations`.
REPORT_VIOLATIONS = """
window.__violations = []
document.addEventListener("securitypolicyviolation", (event) => {
  // blockedURI is "inline" for inline code.
  const text = `${event.effectiveDirective} blocked ${event.blockedURI}`
    + ` on ${event.documentURI}: ${event.sample}`
  window.__violations.push(text)
  window.reportViolation(text)
})
"""
# Milliseconds to wait for reports that the test expects.
REPORT_TIMEOUT_MS = 5_000

# Styles of the message's HTML part, which its frame must apply.
STYLED_HTML = (
    '<style>p.lead { font-weight: 700; }</style><p class="lead" style="color: rgb(200, 0, 0)">'
    "Hi {{ name }}</p>"
)


@dataclass
class PolicyWatch:
    """The violations, CSP console errors and alerts that a page produced."""

    violations: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    def report_violation(self, text: str) -> None:
        self.violations.append(text)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.console_errors.append(message.text)

    def on_dialog(self, dialog: Dialog) -> None:
        if dialog.type == "alert":
            self.alerts.append(dialog.message)
        dialog.dismiss()

    def assert_clean(self, page: Page, where: str) -> None:
        # The evaluation also delivers the reports that the page sent before it.
        assert page.evaluate("window.__violations") == [], f"violations on {where}"
        assert self.violations == [], f"violations on {where}"
        assert self.console_errors == [], f"console errors on {where}"
        assert self.alerts == [], f"alerts on {where}"


@pytest.fixture
def watch(page: Page) -> Iterator[PolicyWatch]:
    """Watch `page` for the whole test, across page loads and in every frame."""
    policy_watch = PolicyWatch()
    page.expose_function("reportViolation", policy_watch.report_violation)
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", policy_watch.on_console)
    page.on("dialog", policy_watch.on_dialog)
    yield policy_watch


def test_policy_blocks_and_reports_inline_code(page: Page, watch: PolicyWatch) -> None:
    # The control case: the policy is in force and the watch sees what it blocks.
    page.goto("/")

    page.evaluate(
        """() => {
          document.body.setAttribute("style", "background: red")
          const script = document.createElement("script")
          script.textContent = "window.inlineScriptRan = true"
          document.body.append(script)
        }"""
    )

    expect(page.locator("body")).not_to_have_css("background-color", "rgb(255, 0, 0)")
    assert page.evaluate("window.inlineScriptRan") is None
    page.wait_for_function("() => window.__violations.length === 2", timeout=REPORT_TIMEOUT_MS)
    reported = page.evaluate("window.__violations")
    assert reported[0].startswith("style-src-attr blocked inline on ")
    assert reported[1].startswith("script-src-elem blocked inline on ")
    assert watch.violations == reported
    wait_until_reported(page, lambda: len(watch.console_errors) == 2, "two console errors")
    assert watch.console_errors[0].startswith("Applying inline style violates")
    assert watch.console_errors[1].startswith("Executing inline script violates")


def wait_until_reported(page: Page, condition: Callable[[], bool], what: str) -> None:
    """Let Playwright deliver the page's events until `condition` holds."""
    deadline = time.monotonic() + REPORT_TIMEOUT_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {REPORT_TIMEOUT_MS} ms"
        # Playwright hands events to the test only while one of its calls runs.
        page.wait_for_timeout(50)


def expect_progress_bar_styled(page: Page) -> None:
    """Expect Turbo's progress bar stylesheet, added with the page's nonce, to apply."""
    page.wait_for_function(
        """() => [...document.head.querySelectorAll("style")]
                   .some((style) => style.textContent.includes(".turbo-progress-bar"))"""
    )
    position = page.evaluate(
        """() => {
          const bar = document.createElement("div")
          bar.className = "turbo-progress-bar"
          document.body.append(bar)
          const position = getComputedStyle(bar).position
          bar.remove()
          return position
        }"""
    )
    assert position == "fixed", "Turbo's progress bar stylesheet was blocked"


@pytest.fixture
def shared_import_files_dir() -> Iterator[Path]:
    """IMPORT_FILES_DIR of this run, which uvicorn reads too; the test's files are removed after."""
    folder = Path(settings.IMPORT_FILES_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.iterdir())
    yield folder
    for path in set(folder.iterdir()) - before:
        path.unlink()


def test_operator_pages_have_no_violations(
    page: Page, watch: PolicyWatch, delivery_gate: DeliveryGate, shared_import_files_dir: Path
) -> None:
    # A name that would run a script, were it not escaped, shows up on most pages.
    hostile = make_hostile('"><img src=x onerror=alert(1)>', shared_import_files_dir)
    Campaign.objects.filter(pk=hostile.campaign.pk).update(email_html=STYLED_HTML)
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Spring launch", **MESSAGE_CONTENT
    )
    for number in range(3):
        Recipient.objects.create(campaign=campaign, email=f"reader{number}@example.com")

    # The index, then a Turbo visit whose progress bar adds a <style> with the nonce.
    page.goto("/")
    page.evaluate("() => { window.Turbo.config.drive.progressBarDelay = 0 }")
    page.get_by_role("link", name="Suppression list").click()
    expect(page.get_by_role("heading", name="Suppression list")).to_be_visible()
    expect_progress_bar_styled(page)
    watch.assert_clean(page, "the index and the suppression list")

    # The new and edit forms, whose Stimulus controller adds and removes rows.
    page.goto("/campaigns/new")
    add_row(page, name="Bob", email="bob@example.com")
    remove_row(recipient_rows(page).nth(1))
    page.goto(reverse("campaigns:edit", args=[campaign.pk]))
    add_row(page, name="Carol", email="carol@example.com")
    watch.assert_clean(page, "the campaign forms")

    # The preview, whose frame applies the message's own styles.
    page.goto(reverse("campaigns:preview", args=[hostile.campaign.pk]))
    frame = page.frame_locator("iframe[data-preview-part='html']")
    expect(frame.locator("p.lead")).to_have_css("color", "rgb(200, 0, 0)")
    expect(frame.locator("p.lead")).to_have_css("font-weight", "700")
    watch.assert_clean(page, "the preview")

    # The import mapping page and the report of a finished import.
    page.goto(hostile.mapping_import.get_absolute_url())
    expect(page.get_by_role("heading", name="Choose the columns to import")).to_be_visible()
    page.goto(hostile.finished_import.get_absolute_url())
    watch.assert_clean(page, "the import pages")

    # The workspace page, with its forms and member list.
    page.goto(reverse("accounts:workspace"))
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    watch.assert_clean(page, "the workspace page")

    # A campaign page whose live stream morphs the header and replaces rows.
    page.goto(campaign.get_absolute_url())
    wait_for_stream(page)
    page.get_by_role("button", name="Dispatch").click()
    delivery_gate.allow(3)
    header = page.locator(f"#{campaign.dom_id}_header")
    expect(header.locator(".badge")).to_have_text("Completed", timeout=UPDATE_TIMEOUT_MS)
    expect(page.locator("tr[data-status='sent']")).to_have_count(3)
    watch.assert_clean(page, "the campaign page during a dispatch")


def test_captured_mail_pages_have_no_violations(
    page: Page,
    watch: PolicyWatch,
    start_extra_app_server: Any,
    tmp_path: Path,
) -> None:
    # The pages exist only with DEBUG on, so they get a server of their own.
    base_url = start_extra_app_server({"DEBUG": "true", "MAIL_SINK_DIR": str(tmp_path)})
    content = captured_message("Hello").replace(
        b"<p>Hello</p>", STYLED_HTML.replace("{{ name }}", "Ada").encode()
    )
    stored = store_message(tmp_path, "shop@example.com", ["ada@example.com"], content)

    page.goto(f"{base_url}/dev/mail/")
    page.get_by_role("link", name="Hello").click()

    expect(page).to_have_url(f"{base_url}/dev/mail/{stored.stem}/")
    frame = page.frame_locator("iframe[title='HTML part of the message']")
    expect(frame.locator("p.lead")).to_have_css("color", "rgb(200, 0, 0)")
    expect(frame.locator("p.lead")).to_have_css("font-weight", "700")
    watch.assert_clean(page, "the captured mail pages")
