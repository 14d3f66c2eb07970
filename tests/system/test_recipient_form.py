"""Adding and removing recipient rows in the browser, on the new and the edit page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Campaign
from tests.system.browser import (
    PREFIX,
    add_row,
    campaign_id_from_url,
    expect_no_page_load,
    expect_rows_numbered,
    fill_row,
    mark_window,
    recipient_rows,
    remove_row,
)

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


def recipients_of(campaign_id: int) -> list[tuple[str, str, str]]:
    rows = Campaign.objects.get(pk=campaign_id).recipients.order_by("id")
    return list(rows.values_list("name", "email", "phone_number"))


def test_new_form_keeps_rows_after_error(page: Page, base_url: str) -> None:
    page.goto("/campaigns/new")
    mark_window(page)
    page.get_by_label("Campaign name").fill("Autumn newsletter")
    fill_row(recipient_rows(page).nth(0), name="Anna", email="anna@example.com")

    # Add three rows, remove the middle new one, add one more, remove the first.
    add_row(page, name="Bob", email="bob@example.com")
    carol = add_row(page, name="Carol", email="carol@example.com")
    add_row(page, name="Dan", email="dan.example.com")
    remove_row(carol)
    add_row(page, name="Eve", phone="+44 7911 123456")
    remove_row(recipient_rows(page).nth(0))

    # It should leave Bob, Dan and Eve, indexed 0 to 2.
    expect_rows_numbered(page, 3)
    rows = recipient_rows(page)
    expect(rows.nth(0).get_by_label("Name")).to_have_value("Bob")
    expect(rows.nth(1).get_by_label("Name")).to_have_value("Dan")
    expect(rows.nth(2).get_by_label("Name")).to_have_value("Eve")

    with page.expect_response(
        lambda response: response.request.method == "POST" and response.url.endswith("/new")
    ) as submission:
        page.get_by_role("button", name="Create campaign").click()

    # It should respond with 422, and Turbo should render the form in place with every typed row.
    assert submission.value.status == 422
    dan_email = rows.nth(1).get_by_label("Email")
    dan_email_errors = dan_email.locator("xpath=..").locator(".field-error")
    expect(dan_email_errors).to_have_text(
        "“dan.example.com” is not a valid email address. An email address must have an @-sign."
    )
    expect(page.locator(".field-error")).to_have_count(1)
    expect(page).to_have_url(f"{base_url}/campaigns/new")
    expect_no_page_load(page)
    expect_rows_numbered(page, 3)
    expect(page.get_by_label("Campaign name")).to_have_value("Autumn newsletter")
    # The form shows the values as typed. The phone number is normalized only on save.
    expected_values = [
        ("Bob", "bob@example.com", ""),
        ("Dan", "dan.example.com", ""),
        ("Eve", "", "+44 7911 123456"),
    ]
    for index, (name, email, phone) in enumerate(expected_values):
        expect(rows.nth(index).get_by_label("Name")).to_have_value(name)
        expect(rows.nth(index).get_by_label("Email")).to_have_value(email)
        expect(rows.nth(index).get_by_label("Phone")).to_have_value(phone)
    assert not Campaign.objects.exists()

    dan_email.fill("dan@example.com")
    page.get_by_role("button", name="Create campaign").click()

    # It should create the campaign with exactly the three remaining rows.
    campaign_id = campaign_id_from_url(page)
    expect(page.get_by_role("status")).to_have_text("Campaign “Autumn newsletter” created.")
    expect_no_page_load(page)
    assert recipients_of(campaign_id) == [
        ("Bob", "bob@example.com", ""),
        ("Dan", "dan@example.com", ""),
        ("Eve", "", "+447911123456"),
    ]


def test_edit_form_deletes_removed_saved_row(
    page: Page, base_url: str, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = make_campaign(name="Winter sale")
    ada, grace, alan = campaign.recipients.order_by("id")
    page.goto(f"/campaigns/{campaign.pk}/edit")
    rows = recipient_rows(page)
    expect(rows).to_have_count(3)
    for index in range(3):
        expect(rows.nth(index)).to_have_attribute("data-new-record", "false")

    remove_row(rows.nth(1))

    # It should hide the saved row and check its DELETE box, keeping every index.
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_be_hidden()
    expect(rows.nth(1).locator(f"input[name='{PREFIX}-1-DELETE']")).to_be_checked()
    expect(rows.nth(0).locator(f"input[name='{PREFIX}-0-DELETE']")).not_to_be_checked()
    expect(rows.nth(2).locator(f"input[name='{PREFIX}-2-DELETE']")).not_to_be_checked()
    expect(rows.nth(1).locator(f"input[name='{PREFIX}-1-id']")).to_have_value(str(grace.pk))
    expect_rows_numbered(page, 3, hidden=(1,))
    expect(page.locator(f"input[name='{PREFIX}-INITIAL_FORMS']")).to_have_value("3")

    # It should append a new row after the saved rows, hidden one included.
    add_row(page, name="Linus", email="linus@example.com")
    expect_rows_numbered(page, 4, hidden=(1,))

    page.get_by_role("button", name="Save campaign").click()

    # It should delete exactly the removed row and keep the others as they were.
    expect(page).to_have_url(f"{base_url}/campaigns/{campaign.pk}")
    expect(page.get_by_role("status")).to_have_text("Campaign “Winter sale” saved.")
    remaining = dict(campaign.recipients.values_list("id", "name"))
    assert grace.pk not in remaining
    assert remaining.pop(ada.pk) == ada.name
    assert remaining.pop(alan.pk) == alan.name
    assert list(remaining.values()) == ["Linus"]
    table_rows = page.locator(f"#campaign_{campaign.pk}_recipients tr")
    expect(table_rows).to_have_count(3)
    expect(page.locator(f"#{grace.dom_id}")).to_have_count(0)
