"""Adding, editing and deleting one recipient from the table of a pending campaign page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Campaign

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]

MakeCampaign = Callable[..., Campaign]


def contacts(campaign: Campaign) -> list[tuple[str, str, str]]:
    return list(campaign.recipients.order_by("id").values_list("name", "email", "phone_number"))


def test_table_add_edit_delete(page: Page, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(recipients=[{"name": "Ada", "email": "ada@example.com"}])
    table = page.locator(f"#{campaign.dom_id}_recipients")
    page.goto(campaign.get_absolute_url())
    expect(table.locator("tr")).to_have_count(1)

    # Add a recipient.
    page.get_by_role("link", name="Add recipient").click()
    page.get_by_label("Name").fill("Grace")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_role("button", name="Add recipient").click()

    expect(page.locator("#flash")).to_have_text("Recipient “Grace” added.")
    expect(table.locator("tr")).to_have_count(2)
    grace_row = table.locator("tr", has_text="grace@example.com")
    expect(grace_row).to_contain_text("Grace")
    expect(page.locator("[data-count='total']")).to_have_text("2")

    # A duplicate email is shown next to the field, and nothing is saved.
    page.get_by_role("link", name="Edit Grace").click()
    page.get_by_label("Email").fill("ADA@example.com")
    page.get_by_role("button", name="Save recipient").click()
    expect(page.locator(".field-error")).to_have_text(
        "Another recipient of this campaign has this email address."
    )

    # Edit it.
    page.get_by_label("Name").fill("Grace Hopper")
    page.get_by_label("Email").fill("")
    page.get_by_label("Phone").fill("+1 202 555 0101")
    page.get_by_role("button", name="Save recipient").click()

    expect(page.locator("#flash")).to_have_text("Recipient “Grace Hopper” saved.")
    edited_row = table.locator("tr", has_text="Grace Hopper")
    expect(edited_row).to_contain_text("+12025550101")
    expect(table.locator("tr", has_text="grace@example.com")).to_have_count(0)

    # Delete it, after the confirmation page.
    page.get_by_role("link", name="Delete Grace Hopper").click()
    expect(page.get_by_role("heading")).to_have_text("Delete recipient “Grace Hopper”?")
    page.get_by_role("button", name="Delete recipient").click()

    expect(page.locator("#flash")).to_have_text("Recipient “Grace Hopper” deleted.")
    expect(table.locator("tr")).to_have_count(1)
    expect(table).to_contain_text("ada@example.com")
    expect(page.locator("[data-count='total']")).to_have_text("1")
    assert contacts(campaign) == [("Ada", "ada@example.com", "")]
