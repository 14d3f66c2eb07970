"""Adding, editing and deleting one recipient of a pending campaign from its table.

Tests that read the campaign's live-update stream need
`django_db(transaction=True)`, because the refresh is published after the commit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from campaigns import recipient_views
from campaigns.forms import RecipientForm
from campaigns.models import Campaign, Recipient
from tests.campaigns.campaign_form import field_html
from tests.conftest import StreamListener
from tests.outcomes import move_to_status

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

MakeCampaign = Callable[..., Campaign]
Listen = Callable[[Campaign], StreamListener]

READ_ONLY_MESSAGES = {
    "processing": "This campaign was already dispatched; it is read-only.",
    "paused": "This campaign was already dispatched; it is read-only.",
    "completed": "This campaign was already dispatched; it is read-only.",
    "cancelled": "This campaign was cancelled, so it can no longer be edited or deleted.",
}
DISPATCHED_STATUSES = list(READ_ONLY_MESSAGES)
TURBO_REQUEST_ID = "request_7"
DUPLICATE_EMAIL = recipient_views.DUPLICATE_EMAIL_MESSAGE
DUPLICATE_PHONE = recipient_views.DUPLICATE_PHONE_MESSAGE


def create_url(campaign: Campaign) -> str:
    return reverse("campaigns:recipient_create", args=[campaign.pk])


def edit_url(recipient: Recipient) -> str:
    return reverse("campaigns:recipient_edit", args=[recipient.campaign_id, recipient.pk])


def delete_url(recipient: Recipient) -> str:
    return reverse("campaigns:recipient_delete", args=[recipient.campaign_id, recipient.pk])


def contacts(campaign: Campaign) -> list[tuple[str, str, str]]:
    return list(campaign.recipients.order_by("id").values_list("name", "email", "phone_number"))


def flash_messages(response: TestResponse) -> list[tuple[str, str]]:
    html = response.content.decode()
    return re.findall(r'<li class="flash flash-(\w+)" role="status">(.*?)</li>', html)


def announced(listener: StreamListener) -> list[dict[str, str]]:
    return [entry.fields for entry in listener.entries()]


ORIGINAL = [
    ("Ada", "ada@example.com", ""),
    ("Grace", "", "+12025550101"),
    ("Alan", "alan@example.com", "+12025550102"),
]


# Adding


@pytest.mark.django_db(transaction=True)
def test_add_recipient(client: Client, make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    listener = listen(campaign)

    response = client.post(
        create_url(campaign),
        {"name": " Edsger ", "email": "Edsger@Example.COM", "phone_number": "+31 20 555 0101"},
        headers={"X-Turbo-Request-Id": TURBO_REQUEST_ID},
        follow=True,
    )

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [("success", "Recipient “Edsger” added.")]
    assert contacts(campaign) == [*ORIGINAL, ("Edsger", "Edsger@example.com", "+31205550101")]
    assert campaign.progress().queued == 4
    # It should ask the campaign's other pages to refresh, naming this request.
    assert announced(listener) == [{"kind": "refresh", "request_id": TURBO_REQUEST_ID}]


@pytest.mark.django_db
def test_add_page_shows_empty_form(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = client.get(create_url(campaign))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Add recipient</h1>" in html
    assert 'name="email"' in field_html(html, "email")
    assert 'value="' not in field_html(html, "email")
    assert campaign.recipients.count() == 3


@pytest.mark.django_db
def test_add_returns_to_table_page(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    table_page = f"{campaign.get_absolute_url()}?status=queued&page=2"

    response = client.post(
        create_url(campaign), {"email": "edsger@example.com", "next": table_page}
    )

    assert response.status_code == 303
    assert response["Location"] == table_page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "next_url",
    [
        "https://example.org/campaigns/1",
        "//example.org/",
        "/admin/",
        "javascript:alert(1)",
    ],
)
def test_add_ignores_foreign_next(
    client: Client, make_campaign: MakeCampaign, next_url: str
) -> None:
    campaign = make_campaign()

    page = client.get(create_url(campaign), {"next": next_url}).content.decode()
    response = client.post(create_url(campaign), {"email": "e@example.com", "next": next_url})

    assert next_url not in page
    assert response["Location"] == campaign.get_absolute_url()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "Nobody"}, None, "Enter an email address or a phone number."),
        ({"email": "not an email"}, "email", "is not a valid email address."),
        ({"phone_number": "12"}, "phone_number", "is not a valid phone number"),
    ],
)
def test_add_invalid_shows_errors(
    client: Client,
    make_campaign: MakeCampaign,
    data: dict[str, str],
    field: str | None,
    message: str,
) -> None:
    campaign = make_campaign()

    response = client.post(create_url(campaign), data)

    html = response.content.decode()
    assert response.status_code == 422
    assert message in (field_html(html, field) if field else html)
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "ADA@example.com"}, "email", DUPLICATE_EMAIL),
        ({"phone_number": "+1 202 555 0101"}, "phone_number", DUPLICATE_PHONE),
    ],
)
def test_add_duplicate_is_form_error(
    client: Client, make_campaign: MakeCampaign, data: dict[str, str], field: str, message: str
) -> None:
    campaign = make_campaign()

    response = client.post(create_url(campaign), data)

    html = response.content.decode()
    assert response.status_code == 422
    assert message in field_html(html, field)
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db
def test_add_same_email_other_campaign(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other", recipients=[])

    response = client.post(create_url(other), {"email": "ada@example.com"})

    assert response.status_code == 303
    assert contacts(other) == [("", "ada@example.com", "")]
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db
def test_add_race_on_unique_index(
    client: Client, make_campaign: MakeCampaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer saved the same email after the check: the unique index
    # rejects the insert, and the form shows the error instead of a 500.
    campaign = make_campaign()
    monkeypatch.setattr(recipient_views, "_add_duplicate_errors", lambda form, campaign_id: False)

    response = client.post(create_url(campaign), {"name": "Copy", "email": "Ada@Example.com"})

    html = response.content.decode()
    assert response.status_code == 422
    assert recipient_views.DUPLICATE_EMAIL_MESSAGE in field_html(html, "email")
    assert 'value="Ada@Example.com"' in field_html(html, "email")
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db
def test_edit_race_on_phone_index(
    client: Client, make_campaign: MakeCampaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")
    monkeypatch.setattr(recipient_views, "_add_duplicate_errors", lambda form, campaign_id: False)

    response = client.post(edit_url(ada), {"name": "Ada", "phone_number": "+12025550101"})

    html = response.content.decode()
    assert response.status_code == 422
    assert recipient_views.DUPLICATE_PHONE_MESSAGE in field_html(html, "phone_number")
    # The form still edits the same recipient.
    assert "Save recipient" in html
    assert contacts(campaign) == ORIGINAL


# Editing


@pytest.mark.django_db(transaction=True)
def test_edit_recipient(client: Client, make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    grace = campaign.recipients.get(name="Grace")
    listener = listen(campaign)

    response = client.post(
        edit_url(grace),
        {"name": "Grace Hopper", "email": "grace@navy.example", "phone_number": ""},
        follow=True,
    )

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [("success", "Recipient “Grace Hopper” saved.")]
    grace.refresh_from_db()
    assert grace.name == "Grace Hopper"
    assert grace.email == "grace@navy.example"
    assert grace.phone_number == ""
    assert campaign.recipients.count() == 3
    assert announced(listener) == [{"kind": "refresh", "request_id": ""}]


@pytest.mark.django_db
def test_edit_page_shows_values(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    alan = campaign.recipients.get(name="Alan")

    response = client.get(edit_url(alan))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="Alan"' in field_html(html, "name")
    assert 'value="alan@example.com"' in field_html(html, "email")
    assert 'value="+12025550102"' in field_html(html, "phone_number")


@pytest.mark.django_db
def test_edit_keeps_own_email(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")

    response = client.post(edit_url(ada), {"name": "Ada L.", "email": "ADA@example.com"})

    assert response.status_code == 303
    ada.refresh_from_db()
    assert (ada.name, ada.email) == ("Ada L.", "ADA@example.com")


@pytest.mark.django_db
def test_edit_duplicate_is_form_error(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")

    response = client.post(edit_url(ada), {"name": "Ada", "email": "Alan@Example.com"})

    html = response.content.decode()
    assert response.status_code == 422
    assert recipient_views.DUPLICATE_EMAIL_MESSAGE in field_html(html, "email")
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db
def test_edit_invalid_changes_nothing(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")

    response = client.post(edit_url(ada), {"name": "Ada", "email": "", "phone_number": ""})

    assert response.status_code == 422
    assert "Enter an email address or a phone number." in response.content.decode()
    assert contacts(campaign) == ORIGINAL


# Deleting


@pytest.mark.django_db
def test_delete_page_asks_first(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    alan = campaign.recipients.get(name="Alan")

    response = client.get(delete_url(alan))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Delete recipient “Alan”?" in html
    assert '<form method="post"' in html
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db(transaction=True)
def test_delete_recipient(client: Client, make_campaign: MakeCampaign, listen: Listen) -> None:
    campaign = make_campaign()
    grace = campaign.recipients.get(name="Grace")
    listener = listen(campaign)

    response = client.post(delete_url(grace), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [("success", "Recipient “Grace” deleted.")]
    assert contacts(campaign) == [ORIGINAL[0], ORIGINAL[2]]
    assert campaign.progress().total == 2
    assert announced(listener) == [{"kind": "refresh", "request_id": ""}]


@pytest.mark.django_db
def test_delete_then_reuse_email(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")

    client.post(delete_url(ada))
    response = client.post(create_url(campaign), {"name": "New Ada", "email": "ada@example.com"})

    assert response.status_code == 303
    assert contacts(campaign) == [*ORIGINAL[1:], ("New Ada", "ada@example.com", "")]


# Dispatched campaigns and races


def recipient_urls(campaign: Campaign) -> list[str]:
    recipient = campaign.recipients.order_by("id").first()
    assert recipient is not None
    return [create_url(campaign), edit_url(recipient), delete_url(recipient)]


@pytest.mark.django_db
@pytest.mark.parametrize("status", DISPATCHED_STATUSES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_dispatched_campaign_redirects(
    client: Client, make_campaign: MakeCampaign, status: str, method: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)
    before = list(campaign.recipients.values_list("id", "name", "email", "phone_number", "status"))

    for url in recipient_urls(campaign):
        response = getattr(client, method)(
            url, {"name": "Changed", "email": "changed@example.com"}, follow=True
        )

        assert response.redirect_chain == [(campaign.get_absolute_url(), 303)], url
        assert flash_messages(response) == [("error", READ_ONLY_MESSAGES[status])], url
    after = list(campaign.recipients.values_list("id", "name", "email", "phone_number", "status"))
    assert after == before


def dispatch_during_validation(campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the campaign start while the next posted recipient form is validated.

    That is after the view's first status check and before it locks the
    campaign row, as when a dispatch request arrives between the two.
    """
    original_clean = RecipientForm.clean

    def clean_then_dispatch(form: RecipientForm) -> dict[str, Any]:
        assert Campaign.objects.get(pk=campaign.pk).start()
        return original_clean(form)

    monkeypatch.setattr(RecipientForm, "clean", clean_then_dispatch)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["create", "edit"])
def test_save_after_dispatch_refused(
    client: Client, make_campaign: MakeCampaign, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")
    url = create_url(campaign) if action == "create" else edit_url(ada)
    assert client.get(url).status_code == 200
    dispatch_during_validation(campaign, monkeypatch)

    response = client.post(url, {"name": "Late", "email": "late@example.com"}, follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [("error", READ_ONLY_MESSAGES["processing"])]
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db
def test_delete_after_dispatch_refused(
    client: Client, make_campaign: MakeCampaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")
    assert client.get(delete_url(ada)).status_code == 200
    # The dispatch lands after the view's first status check, just before its lock.
    original_lock = recipient_views._lock_if_pending

    def dispatch_then_lock(campaign_id: int) -> bool:
        assert Campaign.objects.get(pk=campaign_id).start()
        return original_lock(campaign_id)

    monkeypatch.setattr(recipient_views, "_lock_if_pending", dispatch_then_lock)

    response = client.post(delete_url(ada), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [("error", READ_ONLY_MESSAGES["processing"])]
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db
def test_get_changes_nothing(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")

    client.get(create_url(campaign), {"email": "new@example.com"})
    client.get(edit_url(ada), {"email": "changed@example.com"})
    client.get(delete_url(ada))

    assert contacts(campaign) == ORIGINAL


# Not found


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_wrong_pairs_not_found(client: Client, make_campaign: MakeCampaign, method: str) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other", recipients=[{"email": "other@example.com"}])
    ada = campaign.recipients.get(name="Ada")
    urls = [
        reverse("campaigns:recipient_create", args=[999999]),
        reverse("campaigns:recipient_edit", args=[other.pk, ada.pk]),
        reverse("campaigns:recipient_delete", args=[other.pk, ada.pk]),
        reverse("campaigns:recipient_edit", args=[campaign.pk, 999999]),
        reverse("campaigns:recipient_delete", args=[campaign.pk, 999999]),
    ]

    for url in urls:
        response = getattr(client, method)(url, {"email": "x@example.com"})

        assert response.status_code == 404, url
    assert contacts(campaign) == ORIGINAL
    assert contacts(other) == [("", "other@example.com", "")]


@pytest.mark.django_db
def test_other_methods_not_allowed(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    for url in recipient_urls(campaign):
        assert client.put(url).status_code == 405, url
        assert client.delete(url).status_code == 405, url
    assert contacts(campaign) == ORIGINAL


# The campaign page


@pytest.mark.django_db
def test_pending_page_shows_row_actions(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")

    html = client.get(campaign.get_absolute_url(), {"page": "1"}).content.decode()

    back = f"next=%2Fcampaigns%2F{campaign.pk}%3Fpage%3D1"
    assert f'href="{create_url(campaign)}?{back}"' in html
    assert f'href="{edit_url(ada)}?{back}"' in html
    assert f'href="{delete_url(ada)}?{back}"' in html
    assert html.count(">Edit</a>") == 1 + 3  # the header's Edit, then one per row


@pytest.mark.django_db
@pytest.mark.parametrize("status", DISPATCHED_STATUSES)
def test_dispatched_page_has_no_actions(
    client: Client, make_campaign: MakeCampaign, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    html = client.get(campaign.get_absolute_url()).content.decode()

    assert "/recipients/new" not in html
    assert "/edit" not in html
    assert "/delete" not in html


@pytest.mark.django_db
def test_large_edit_page_omits_rows(
    client: Client, make_campaign: MakeCampaign, settings: Settings
) -> None:
    settings.MAX_RECIPIENT_ROWS = 2
    campaign = make_campaign()

    response = client.get(reverse("campaigns:edit", args=[campaign.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "recipients-TOTAL_FORMS" not in html
    assert "ada@example.com" not in html
    assert "has more than 2 recipients" in html
    assert f'href="{campaign.get_absolute_url()}"' in html
    assert 'value="Spring launch"' in field_html(html, "name")


@pytest.mark.django_db
def test_small_edit_page_lists_rows(
    client: Client, make_campaign: MakeCampaign, settings: Settings
) -> None:
    settings.MAX_RECIPIENT_ROWS = 3
    campaign = make_campaign()

    html = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()

    assert 'name="recipients-TOTAL_FORMS" value="3"' in html
    assert "recipients_in_table" not in html


@pytest.mark.django_db(transaction=True)
def test_large_edit_saves_name_only(
    client: Client, make_campaign: MakeCampaign, settings: Settings, listen: Listen
) -> None:
    settings.MAX_RECIPIENT_ROWS = 2
    campaign = make_campaign()
    before = list(campaign.recipients.values_list("id", "name", "email", "phone_number", "version"))
    listener = listen(campaign)

    response = client.post(
        reverse("campaigns:edit", args=[campaign.pk]),
        {"name": "Renamed", "recipients_in_table": "1"},
        follow=True,
    )

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [("success", "Campaign “Renamed” saved.")]
    campaign.refresh_from_db()
    assert campaign.name == "Renamed"
    after = list(campaign.recipients.values_list("id", "name", "email", "phone_number", "version"))
    assert after == before
    assert announced(listener) == [{"kind": "refresh", "request_id": ""}]


@pytest.mark.django_db
def test_large_edit_ignores_posted_rows(
    client: Client, make_campaign: MakeCampaign, settings: Settings
) -> None:
    # A nested form posted for a campaign that has grown past the limit
    # meanwhile: only the name is saved, and the rows are left alone.
    settings.MAX_RECIPIENT_ROWS = 2
    campaign = make_campaign()
    ada = campaign.recipients.get(name="Ada")
    data = {
        "name": "Renamed",
        "recipients-TOTAL_FORMS": "1",
        "recipients-INITIAL_FORMS": "1",
        "recipients-0-id": str(ada.pk),
        "recipients-0-email": "changed@example.com",
        "recipients-0-DELETE": "on",
    }

    response = client.post(reverse("campaigns:edit", args=[campaign.pk]), data)

    assert response.status_code == 303
    assert contacts(campaign) == ORIGINAL


@pytest.mark.django_db
def test_large_edit_invalid_name(
    client: Client, make_campaign: MakeCampaign, settings: Settings
) -> None:
    settings.MAX_RECIPIENT_ROWS = 2
    campaign = make_campaign()

    response = client.post(
        reverse("campaigns:edit", args=[campaign.pk]), {"name": " ", "recipients_in_table": "1"}
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert "Enter a campaign name." in field_html(html, "name")
    assert "has more than 2 recipients" in html
    campaign.refresh_from_db()
    assert campaign.name == "Spring launch"


@pytest.mark.django_db
@pytest.mark.parametrize("status", DISPATCHED_STATUSES)
def test_large_edit_dispatched_refused(
    client: Client, make_campaign: MakeCampaign, settings: Settings, status: str
) -> None:
    settings.MAX_RECIPIENT_ROWS = 2
    campaign = make_campaign()
    move_to_status(campaign, status)

    response = client.post(
        reverse("campaigns:edit", args=[campaign.pk]),
        {"name": "Renamed", "recipients_in_table": "1"},
        follow=True,
    )

    assert flash_messages(response) == [("error", READ_ONLY_MESSAGES[status])]
    campaign.refresh_from_db()
    assert campaign.name == "Spring launch"
