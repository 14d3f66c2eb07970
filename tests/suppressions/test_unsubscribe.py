"""Unsubscribe tokens and the pages that the links in messages open."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from accounts.models import Workspace
from campaigns.models import Campaign
from suppressions.models import Suppression, SuppressionReason, suppress
from suppressions.tokens import InvalidToken, make_token, read_token, unsubscribe_urls
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def campaign(make_campaign: Callable[..., Campaign]) -> Campaign:
    return make_campaign()


@pytest.fixture
def token(campaign: Campaign) -> str:
    recipient = campaign.recipients.get(email="ada@example.com")
    return make_token(
        campaign.pk, recipient.pk, recipient.email, workspace_id=campaign.workspace_id
    )


def page_url(token: str) -> str:
    return reverse("suppressions:unsubscribe", args=[token])


def one_click_url(token: str) -> str:
    return reverse("suppressions:one_click", args=[token])


def tampered(token: str) -> str:
    """The token with one character of its payload changed."""
    position = 2
    replacement = "A" if token[position] != "A" else "B"
    return token[:position] + replacement + token[position + 1 :]


def csrf_client() -> Client:
    """A client that sends no CSRF token unless the test adds one, as a mail client does."""
    return Client(enforce_csrf_checks=True)


def test_token_round_trip() -> None:
    read = read_token(make_token(7, 42, "ada@example.com", workspace_id=3))

    assert read.workspace_id == 3
    assert read.campaign_id == 7
    assert read.recipient_id == 42
    assert read.address == "ada@example.com"
    assert read.is_email


def test_token_for_phone() -> None:
    read = read_token(make_token(7, 42, "+12025550101", workspace_id=3))

    assert read.address == "+12025550101"
    assert not read.is_email


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-a-token",
        tampered(make_token(7, 42, "ada@example.com", workspace_id=3)),
        make_token(7, 42, "ada@example.com", workspace_id=3)[:-2],
        # Signed with the same key for another purpose.
        signing.dumps([7, 42, "ada@example.com"]),
        signing.dumps([7, 42, "ada@example.com"], salt="other"),
    ],
)
def test_token_tampering_rejected(bad: str) -> None:
    with pytest.raises(InvalidToken, match="invalid"):
        read_token(bad)


@pytest.mark.parametrize(
    "content", [[7, 42], ["7", 42, "ada@example.com"], [7, True, "a@b.c"], [7, 42, ""], {}]
)
def test_token_malformed_content_rejected(content: object) -> None:
    token = signing.dumps(content, salt="suppressions.unsubscribe")

    with pytest.raises(InvalidToken, match="malformed"):
        read_token(token)


def test_token_from_other_key_rejected(settings) -> None:
    token = make_token(7, 42, "ada@example.com", workspace_id=3)
    settings.SECRET_KEY = "another-key-" + "x" * 40

    with pytest.raises(InvalidToken):
        read_token(token)


def test_unsubscribe_urls_absolute(settings) -> None:
    settings.SITE_URL = "https://mail.example.com"

    page, one_click = unsubscribe_urls(7, 42, "ada@example.com", workspace_id=3)

    assert page.startswith("https://mail.example.com/u/")
    assert one_click.startswith("https://mail.example.com/u/")
    assert one_click.endswith("/one-click")
    token = page.removeprefix("https://mail.example.com/u/")
    assert one_click == f"https://mail.example.com/u/{token}/one-click"
    assert read_token(token).address == "ada@example.com"


def test_get_shows_confirmation(client: Client, token: str) -> None:
    response = client.get(page_url(token))
    html = response.content.decode()

    assert response.status_code == 200
    assert "Unsubscribe ada@example.com from these messages?" in html
    assert f'<form method="post" action="{page_url(token)}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    # The page is for recipients: no link to the operators' pages.
    assert reverse("suppressions:index") not in html


def test_get_changes_nothing(client: Client, token: str) -> None:
    client.get(page_url(token))
    client.get(page_url(token))

    assert not Suppression.objects.exists()


@pytest.mark.parametrize("url", [page_url, one_click_url])
def test_get_when_already_unsubscribed(
    client: Client, token: str, url: Callable[[str], str]
) -> None:
    entry, _created = suppress(
        email="ADA@example.com",
        reason=SuppressionReason.OPERATOR,
        workspace_id=operator_workspace().pk,
    )

    response = client.get(url(token))

    html = response.content.decode()
    assert response.status_code == 200
    assert "You are already unsubscribed" in html
    assert "No more messages will be sent to ada@example.com." in html
    assert "<form" not in html
    assert list(Suppression.objects.values_list("pk", "reason")) == [
        (entry.pk, SuppressionReason.OPERATOR)
    ]


def test_get_phone_already_unsubscribed(client: Client, campaign: Campaign) -> None:
    suppress(
        phone="+1 (202) 555-0101",
        reason=SuppressionReason.OPERATOR,
        workspace_id=operator_workspace().pk,
    )
    token = make_token(campaign.pk, 0, "+12025550101", workspace_id=campaign.workspace_id)

    html = client.get(page_url(token)).content.decode()

    assert "You are already unsubscribed" in html


@pytest.mark.parametrize("url", [page_url, one_click_url])
def test_head_answers_like_get(client: Client, token: str, url: Callable[[str], str]) -> None:
    get = client.get(url(token))

    response = client.head(url(token))

    assert response.status_code == 200
    assert response["Content-Type"] == get["Content-Type"]
    assert response.content == b""
    assert not Suppression.objects.exists()


def test_head_tampered_token_400(client: Client, token: str) -> None:
    response = client.head(one_click_url(tampered(token)))

    assert response.status_code == 400
    assert not Suppression.objects.exists()


def test_post_suppresses_address(client: Client, campaign: Campaign, token: str) -> None:
    response = client.post(page_url(token))

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    entry = Suppression.objects.get()
    assert entry.email == "ada@example.com"
    assert entry.reason == SuppressionReason.UNSUBSCRIBED
    assert entry.source_campaign_id == campaign.pk


def test_post_twice_harmless(client: Client, token: str) -> None:
    first = client.post(page_url(token))
    second = client.post(page_url(token))

    assert first.status_code == 200
    assert second.status_code == 200
    assert "You are unsubscribed" in second.content.decode()
    assert Suppression.objects.count() == 1


def test_post_needs_csrf_token(token: str) -> None:
    client = csrf_client()

    response = client.post(page_url(token))

    assert response.status_code == 403
    assert not Suppression.objects.exists()


def test_post_with_csrf_token_from_page(token: str) -> None:
    client = csrf_client()
    client.get(page_url(token))
    csrf_token = client.cookies["csrftoken"].value

    response = client.post(page_url(token), {"csrfmiddlewaretoken": csrf_token})

    assert response.status_code == 200
    assert Suppression.objects.count() == 1


def test_post_for_deleted_campaign(client: Client, campaign: Campaign, token: str) -> None:
    campaign.delete()

    response = client.post(page_url(token))

    assert response.status_code == 200
    entry = Suppression.objects.get()
    assert entry.email == "ada@example.com"
    assert entry.source_campaign is None


def test_phone_token_suppresses_phone(client: Client, campaign: Campaign) -> None:
    recipient = campaign.recipients.get(phone_number="+12025550101", email="")
    token = make_token(
        campaign.pk, recipient.pk, recipient.phone_number, workspace_id=campaign.workspace_id
    )

    client.post(page_url(token))

    entry = Suppression.objects.get()
    assert entry.phone == "+12025550101"
    assert entry.email == ""


@pytest.mark.parametrize("method", ["get", "post"])
def test_page_tampered_token_400(client: Client, token: str, method: str) -> None:
    response = getattr(client, method)(page_url(tampered(token)))

    assert response.status_code == 400
    assert "The unsubscribe link is invalid" in response.content.decode()
    assert not Suppression.objects.exists()


def test_one_click_without_csrf_token(token: str) -> None:
    client = csrf_client()

    response = client.post(one_click_url(token), ONE_CLICK_BODY, content_type=FORM)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "Unsubscribed" in response.content.decode()
    entry = Suppression.objects.get()
    assert entry.email == "ada@example.com"
    assert entry.reason == SuppressionReason.UNSUBSCRIBED


def test_one_click_multipart_body(token: str) -> None:
    response = csrf_client().post(one_click_url(token), {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert Suppression.objects.count() == 1


def test_one_click_twice_harmless(token: str) -> None:
    client = csrf_client()

    first = client.post(one_click_url(token), ONE_CLICK_BODY, content_type=FORM)
    second = client.post(one_click_url(token), ONE_CLICK_BODY, content_type=FORM)

    assert first.status_code == 200
    assert second.status_code == 200
    assert Suppression.objects.count() == 1


def test_one_click_tampered_token_400(token: str) -> None:
    response = csrf_client().post(one_click_url(tampered(token)), ONE_CLICK_BODY, content_type=FORM)

    assert response.status_code == 400
    assert "The unsubscribe link is invalid" in response.content.decode()
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("body", ["", "List-Unsubscribe=Other", "unsubscribe=yes"])
def test_one_click_wrong_body_400(token: str, body: str) -> None:
    response = csrf_client().post(one_click_url(token), body, content_type=FORM)

    assert response.status_code == 400
    assert "List-Unsubscribe=One-Click" in response.content.decode()
    assert not Suppression.objects.exists()


def test_one_click_get_shows_confirmation(client: Client, token: str) -> None:
    # Mail clients without RFC 8058 open the List-Unsubscribe URL with a GET.
    response = client.get(one_click_url(token))
    html = response.content.decode()

    assert response.status_code == 200
    assert "Unsubscribe ada@example.com from these messages?" in html
    assert f'<form method="post" action="{page_url(token)}"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert not Suppression.objects.exists()


def test_one_click_get_then_form_post(token: str) -> None:
    client = csrf_client()
    client.get(one_click_url(token))
    csrf_token = client.cookies["csrftoken"].value

    response = client.post(page_url(token), {"csrfmiddlewaretoken": csrf_token})

    assert response.status_code == 200
    assert Suppression.objects.get().email == "ada@example.com"


def test_one_click_get_tampered_token_400(client: Client, token: str) -> None:
    response = client.get(one_click_url(tampered(token)))

    assert response.status_code == 400
    assert "The unsubscribe link is invalid" in response.content.decode()
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("method", ["put", "delete"])
def test_one_click_other_methods_405(client: Client, token: str, method: str) -> None:
    response = getattr(client, method)(one_click_url(token))

    assert response.status_code == 405
    assert not Suppression.objects.exists()


def test_post_recipient_id_zero(client: Client, campaign: Campaign) -> None:
    # A test send's link names recipient 0, which no recipient has.
    token = make_token(campaign.pk, 0, "tester@example.com", workspace_id=campaign.workspace_id)

    page = client.post(page_url(token))
    one_click = csrf_client().post(
        one_click_url(
            make_token(campaign.pk, 0, "+12025550143", workspace_id=campaign.workspace_id)
        ),
        ONE_CLICK_BODY,
        content_type=FORM,
    )

    assert page.status_code == 200
    assert one_click.status_code == 200
    entries = Suppression.objects.order_by("email")
    assert [(entry.email, entry.phone) for entry in entries] == [
        ("", "+12025550143"),
        ("tester@example.com", ""),
    ]
    assert all(entry.source_campaign_id == campaign.pk for entry in entries)


def test_one_click_for_deleted_campaign(campaign: Campaign, token: str) -> None:
    campaign.delete()

    response = csrf_client().post(one_click_url(token), ONE_CLICK_BODY, content_type=FORM)

    assert response.status_code == 200
    entry = Suppression.objects.get()
    assert entry.email == "ada@example.com"
    assert entry.source_campaign is None


def old_token(campaign_id: int, recipient_id: int, address: str) -> str:
    """A token as the app signed it before workspaces: without a workspace id."""
    return signing.dumps([campaign_id, recipient_id, address], salt="suppressions.unsubscribe")


def test_token_without_workspace_is_read() -> None:
    read = read_token(old_token(7, 42, "ada@example.com"))

    assert (read.workspace_id, read.campaign_id, read.address) == (None, 7, "ada@example.com")


def test_unsubscribe_goes_to_the_token_workspace(client: Client, campaign: Campaign) -> None:
    elsewhere = Workspace.objects.create(name="Elsewhere")
    token = make_token(campaign.pk, 0, "ada@example.com", workspace_id=elsewhere.pk)

    client.post(page_url(token))

    # The token's workspace decides, not the campaign id that it also carries.
    assert list(Suppression.objects.values_list("workspace_id", "email")) == [
        (elsewhere.pk, "ada@example.com")
    ]


def test_old_token_goes_to_the_campaign_workspace(client: Client) -> None:
    Workspace.objects.create(name="Oldest")
    elsewhere = Workspace.objects.create(name="Elsewhere")
    campaign = Campaign.objects.create(workspace=elsewhere, name="Old message")

    client.post(page_url(old_token(campaign.pk, 0, "ada@example.com")))

    assert Suppression.objects.get().workspace == elsewhere


def test_old_token_deleted_campaign_oldest_workspace() -> None:
    oldest = Workspace.objects.create(name="Oldest")
    Workspace.objects.create(name="Newer")

    Client().post(page_url(old_token(999_999, 0, "ada@example.com")))

    assert Suppression.objects.get().workspace == oldest


@pytest.mark.parametrize("url", [page_url, one_click_url])
def test_unsubscribe_from_deleted_workspace(url: Callable[[str], str]) -> None:
    gone = Workspace.objects.create(name="Gone")
    token = make_token(1, 2, "ada@example.com", workspace_id=gone.pk)
    gone.delete()

    page = Client().get(url(token))
    response = Client().post(url(token), {"List-Unsubscribe": "One-Click"})

    # Nothing is sent from a deleted workspace again: the page confirms
    # the unsubscription, and there is no list to write to.
    assert page.status_code == 200
    assert response.status_code == 200
    assert not Suppression.objects.exists()
