"""Creating a campaign with its recipients through the new-campaign page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from campaigns.models import Campaign
from tests.campaigns.campaign_form import field_html, form_data, row_html

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

pytestmark = pytest.mark.django_db

NEW_URL = reverse("campaigns:create")

ADA = {"name": "Ada Lovelace", "email": "ada@example.com"}
GRACE = {"name": "Grace Hopper", "phone_number": "+12025550101"}


def post(client: Client, data: dict[str, str]) -> TestResponse:
    return client.post(NEW_URL, data)


# The empty form


def test_new_page_shows_one_blank_row(client: Client) -> None:
    response = client.get(NEW_URL)
    html = response.content.decode()

    assert response.status_code == 200
    assert 'name="recipients-0-email"' in html
    assert 'name="recipients-1-email"' not in html
    assert 'value="' not in field_html(html, "recipients-0-email")


def test_new_page_has_management_form(client: Client) -> None:
    html = client.get(NEW_URL).content.decode()

    assert 'name="recipients-TOTAL_FORMS" value="1"' in html
    assert 'name="recipients-INITIAL_FORMS" value="0"' in html
    assert 'name="recipients-MIN_NUM_FORMS"' in html
    assert 'name="recipients-MAX_NUM_FORMS"' in html


def test_new_page_has_row_template(client: Client) -> None:
    html = client.get(NEW_URL).content.decode()

    assert 'name="recipients-__prefix__-email"' in html


# Saving


def test_create_saves_campaign_and_rows(client: Client) -> None:
    response = post(client, form_data("Spring launch", [ADA, GRACE]))

    campaign = Campaign.objects.get()
    assert response.status_code == 303
    assert response["Location"] == campaign.get_absolute_url()
    assert campaign.name == "Spring launch"
    assert campaign.status == Campaign.Status.PENDING
    rows = list(campaign.recipients.values_list("name", "email", "phone_number"))
    assert rows == [
        ("Ada Lovelace", "ada@example.com", ""),
        ("Grace Hopper", "", "+12025550101"),
    ]


def test_create_normalizes_rows(client: Client) -> None:
    row = {
        "name": "  Ada Lovelace ",
        "email": " Ada@Example.COM ",
        "phone_number": "+1 (202) 555-0101",
    }

    post(client, form_data("  Spring launch  ", [row]))

    campaign = Campaign.objects.get()
    recipient = campaign.recipients.get()
    assert campaign.name == "Spring launch"
    assert recipient.name == "Ada Lovelace"
    assert recipient.email == "Ada@example.com"
    assert recipient.phone_number == "+12025550101"


def test_create_shows_success_message(client: Client) -> None:
    response = client.post(NEW_URL, form_data("Spring launch", [ADA]), follow=True)

    assert "Campaign “Spring launch” created." in response.content.decode()


def test_create_skips_blank_rows(client: Client) -> None:
    rows = [{}, ADA, {"name": "", "email": "  ", "phone_number": ""}, {}, GRACE, {}]

    response = post(client, form_data("Spring launch", rows))

    assert response.status_code == 303
    campaign = Campaign.objects.get()
    assert list(campaign.recipients.values_list("name", flat=True)) == [
        "Ada Lovelace",
        "Grace Hopper",
    ]


def test_create_accepts_500_rows(client: Client) -> None:
    rows = [{"name": f"Person {n}", "email": f"person{n}@example.com"} for n in range(500)]
    data = form_data("Big list", rows)
    # Django's default limit of 1,000 fields would reject this form.
    assert len(data) > 1000
    assert len(data) <= settings.DATA_UPLOAD_MAX_NUMBER_FIELDS

    response = post(client, data)

    assert response.status_code == 303
    assert Campaign.objects.get().recipients.count() == 500


def test_create_rejects_too_many_rows(client: Client) -> None:
    limit = settings.MAX_RECIPIENT_ROWS
    rows = [{"email": f"person{n}@example.com"} for n in range(limit + 1)]

    response = post(client, form_data("Too big", rows))

    assert response.status_code == 422
    assert f"A campaign can have at most {limit} recipients" in response.content.decode()
    assert not Campaign.objects.exists()


# Validation errors. Each one returns 422, saves nothing, keeps every typed
# value and shows the error next to the field it is about.


def assert_rejected(response: TestResponse) -> str:
    assert response.status_code == 422
    assert not Campaign.objects.exists()
    return response.content.decode()


def test_invalid_email_rejected(client: Client) -> None:
    rows = [ADA, {"name": "Typo", "email": "grace.example.com"}]

    html = assert_rejected(post(client, form_data("Spring launch", rows)))

    error = (
        "“grace.example.com” is not a valid email address. An email address must have an @-sign."
    )
    assert error in field_html(html, "recipients-1-email")
    assert error not in field_html(html, "recipients-0-email")
    assert 'value="grace.example.com"' in field_html(html, "recipients-1-email")
    assert 'value="Typo"' in field_html(html, "recipients-1-name")
    assert 'value="ada@example.com"' in field_html(html, "recipients-0-email")
    assert 'value="Spring launch"' in field_html(html, "name")


def test_invalid_phone_rejected(client: Client) -> None:
    rows = [ADA, {"name": "Short", "phone_number": "555-01"}]

    html = assert_rejected(post(client, form_data("Spring launch", rows)))

    phone_field = field_html(html, "recipients-1-phone_number")
    assert "“555-01” is not a valid phone number" in phone_field
    assert 'value="555-01"' in phone_field
    assert 'value="ada@example.com"' in field_html(html, "recipients-0-email")


def test_row_without_contact_rejected(client: Client) -> None:
    rows = [ADA, {"name": "Nobody"}, GRACE]

    html = assert_rejected(post(client, form_data("Spring launch", rows)))

    error = "Enter an email address or a phone number."
    assert error in row_html(html, 1)
    assert row_html(html, 1).count('class="field-error"') == 1
    assert error not in row_html(html, 0)
    assert error not in row_html(html, 2)
    assert 'value="Nobody"' in field_html(html, "recipients-1-name")
    assert 'value="+12025550101"' in field_html(html, "recipients-2-phone_number")


def test_same_email_other_case_rejected(client: Client) -> None:
    rows = [ADA, GRACE, {"name": "Ada again", "email": "ADA@Example.com"}]

    html = assert_rejected(post(client, form_data("Spring launch", rows)))

    error = "Duplicate email: row 1 has it too."
    assert error in field_html(html, "recipients-2-email")
    assert "field-error" not in field_html(html, "recipients-0-email")
    assert 'value="ADA@Example.com"' in field_html(html, "recipients-2-email")
    assert 'value="ada@example.com"' in field_html(html, "recipients-0-email")
    assert 'value="Ada again"' in field_html(html, "recipients-2-name")


def test_same_phone_other_spacing_rejected(client: Client) -> None:
    rows = [GRACE, ADA, {"name": "Grace again", "phone_number": "+1 202 555 0101"}]

    html = assert_rejected(post(client, form_data("Spring launch", rows)))

    error = "Duplicate phone number: row 1 has it too."
    assert error in field_html(html, "recipients-2-phone_number")
    assert "field-error" not in field_html(html, "recipients-0-phone_number")
    assert 'value="+1 202 555 0101"' in field_html(html, "recipients-2-phone_number")
    assert 'value="+12025550101"' in field_html(html, "recipients-0-phone_number")


def test_duplicate_error_counts_blank_rows(client: Client) -> None:
    # Row numbers match the numbers shown on the page, which count blank rows.
    rows = [{}, ADA, {}, {"email": "ada@example.com"}]

    html = assert_rejected(post(client, form_data("Spring launch", rows)))

    assert "Duplicate email: row 2 has it too." in field_html(html, "recipients-3-email")


@pytest.mark.parametrize("rows", [[], [{}], [{}, {"name": "  "}]], ids=["none", "blank", "blanks"])
def test_no_recipients_rejected(client: Client, rows: list[dict[str, str]]) -> None:
    html = assert_rejected(post(client, form_data("Spring launch", rows)))

    assert "Add at least one recipient with an email address or a phone number." in html
    assert 'value="Spring launch"' in field_html(html, "name")


@pytest.mark.parametrize("name", [None, "", "   "], ids=["missing", "empty", "blank"])
def test_blank_name_rejected(client: Client, name: str | None) -> None:
    html = assert_rejected(post(client, form_data(name, [ADA, GRACE])))

    assert "Enter a campaign name." in field_html(html, "name")
    assert 'value="ada@example.com"' in field_html(html, "recipients-0-email")
    assert 'value="Grace Hopper"' in field_html(html, "recipients-1-name")
    assert 'value="+12025550101"' in field_html(html, "recipients-1-phone_number")


def test_long_name_rejected(client: Client) -> None:
    name = "N" * 201

    html = assert_rejected(post(client, form_data(name, [ADA])))

    name_field = field_html(html, "name")
    assert "Ensure this value has at most 200 characters (it has 201)." in name_field
    assert f'value="{name}"' in name_field
    assert 'value="ada@example.com"' in field_html(html, "recipients-0-email")


def test_typed_values_kept_escaped(client: Client) -> None:
    rows = [{"name": 'Ada "<b>"', "email": "not an email"}]

    html = assert_rejected(post(client, form_data("Launch <i>now</i>", rows)))

    assert f'value="{escape('Ada "<b>"')}"' in field_html(html, "recipients-0-name")
    assert f'value="{escape("Launch <i>now</i>")}"' in field_html(html, "name")
    assert "<i>now</i>" not in html


def test_name_at_limit_accepted(client: Client) -> None:
    response = post(client, form_data("N" * 200, [ADA]))

    assert response.status_code == 303
    assert Campaign.objects.get().name == "N" * 200
