"""The suppression list page: listing, search, adding, removing, and the admin."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from suppressions.models import Suppression, SuppressionReason, suppress
from suppressions.views import SUPPRESSIONS_PER_PAGE
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db

INDEX_URL = reverse("suppressions:index")
OPERATOR = SuppressionReason.OPERATOR


def listed(html: str) -> list[str]:
    """The addresses in the page's table, in order."""
    return re.findall(r'<tr id="suppression_\d+" data-suppression>\s*<td[^>]*>([^<]+)</td>', html)


def delete_url(entry: Suppression) -> str:
    return reverse("suppressions:delete", args=[entry.pk])


def test_navigation_links_to_list(client: Client) -> None:
    html = client.get(reverse("campaigns:index")).content.decode()

    assert f'href="{INDEX_URL}"' in html


def test_empty_list(client: Client) -> None:
    response = client.get(INDEX_URL)

    assert response.status_code == 200
    assert "The suppression list is empty." in response.content.decode()


def test_list_shows_entries_newest_first(
    client: Client, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = make_campaign(name="Spring <b>launch</b>")
    suppress(
        email="ada@example.com",
        reason=SuppressionReason.UNSUBSCRIBED,
        campaign_id=campaign.pk,
        workspace_id=operator_workspace().pk,
    )
    suppress(phone="+12025550101", reason=OPERATOR, workspace_id=operator_workspace().pk)

    html = client.get(INDEX_URL).content.decode()

    assert listed(html) == ["+12025550101", "ada@example.com"]
    assert "Unsubscribed through the link" in html
    assert "Added by an operator" in html
    # The campaign name is escaped.
    assert "Spring &lt;b&gt;launch&lt;/b&gt;" in html


def test_search_matches_email_and_phone(client: Client) -> None:
    suppress(email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk)
    suppress(email="grace@example.org", reason=OPERATOR, workspace_id=operator_workspace().pk)
    suppress(phone="+12025550101", reason=OPERATOR, workspace_id=operator_workspace().pk)

    assert listed(client.get(INDEX_URL, {"q": "EXAMPLE.ORG"}).content.decode()) == [
        "grace@example.org"
    ]
    assert listed(client.get(INDEX_URL, {"q": "5550101"}).content.decode()) == ["+12025550101"]
    assert listed(client.get(INDEX_URL, {"q": "%"}).content.decode()) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("(202) 555-0101", ["+12025550101"]),
        ("+1 202 555 0101", ["+12025550101"]),
        ("202.555.0101", ["+12025550101"]),
        # A part of a number, with separators.
        ("555-0101", ["+12025550101"]),
        ("(202) 555-0199", []),
    ],
)
def test_search_cleans_phone_query(client: Client, query: str, expected: list[str]) -> None:
    suppress(phone="+12025550101", reason=OPERATOR, workspace_id=operator_workspace().pk)
    suppress(phone="+442079460958", reason=OPERATOR, workspace_id=operator_workspace().pk)
    suppress(email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk)

    html = client.get(INDEX_URL, {"q": query}).content.decode()

    assert listed(html) == expected


def test_search_without_match(client: Client) -> None:
    suppress(email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk)

    html = client.get(INDEX_URL, {"q": "nobody"}).content.decode()

    assert listed(html) == []
    assert "No entry matches “nobody”." in html


def test_search_too_long_rejected(client: Client) -> None:
    suppress(email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk)

    response = client.get(INDEX_URL, {"q": "x" * 255})

    assert response.status_code == 400
    assert listed(response.content.decode()) == []


def test_list_is_paginated(client: Client) -> None:
    for n in range(SUPPRESSIONS_PER_PAGE + 3):
        suppress(
            email=f"user{n:03d}@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk
        )

    first = client.get(INDEX_URL).content.decode()
    second = client.get(INDEX_URL, {"page": 2}).content.decode()

    assert len(listed(first)) == SUPPRESSIONS_PER_PAGE
    assert len(listed(second)) == 3
    assert set(listed(first)).isdisjoint(listed(second))
    assert f"of {SUPPRESSIONS_PER_PAGE + 3}" in first


def test_add_email(client: Client) -> None:
    response = client.post(INDEX_URL, {"address": " Ada@Example.COM "}, follow=True)

    entry = Suppression.objects.get()
    assert entry.email == "Ada@example.com"
    assert entry.phone == ""
    assert entry.reason == SuppressionReason.OPERATOR
    assert entry.source_campaign is None
    assert response.redirect_chain == [(INDEX_URL, 303)]
    assert "Ada@example.com added to the suppression list." in response.content.decode()


def test_add_phone(client: Client) -> None:
    response = client.post(INDEX_URL, {"address": "+1 (202) 555-0101"})

    assert response.status_code == 303
    entry = Suppression.objects.get()
    assert entry.phone == "+12025550101"
    assert entry.email == ""


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("ada@", "is not a valid email address"),
        ("12", "is not a valid phone number"),
        ("", "Enter an email address or a phone number."),
    ],
)
def test_add_invalid_rejected(client: Client, address: str, message: str) -> None:
    response = client.post(INDEX_URL, {"address": address})

    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("stored", "typed"),
    [("ada@example.com", "ADA@example.com "), ("+12025550101", "+1 (202) 555-0101")],
)
def test_add_duplicate_rejected(client: Client, stored: str, typed: str) -> None:
    client.post(INDEX_URL, {"address": stored})

    response = client.post(INDEX_URL, {"address": typed})

    assert response.status_code == 422
    assert "is already on the suppression list." in response.content.decode()
    assert Suppression.objects.count() == 1


def test_add_needs_csrf_token(signed_in: Callable[..., Client]) -> None:
    client = signed_in(enforce_csrf_checks=True)

    response = client.post(INDEX_URL, {"address": "ada@example.com"})

    assert response.status_code == 403
    assert not Suppression.objects.exists()


def test_delete_asks_for_confirmation(client: Client) -> None:
    entry, _ = suppress(
        email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk
    )

    response = client.get(delete_url(entry))

    assert response.status_code == 200
    assert "Remove ada@example.com from the suppression list?" in response.content.decode()
    assert Suppression.objects.filter(pk=entry.pk).exists()


def test_delete_removes_entry(client: Client) -> None:
    entry, _ = suppress(
        email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk
    )
    other, _ = suppress(phone="+12025550101", reason=OPERATOR, workspace_id=operator_workspace().pk)

    response = client.post(delete_url(entry), follow=True)

    assert response.redirect_chain == [(INDEX_URL, 303)]
    assert "ada@example.com removed from the suppression list" in response.content.decode()
    assert list(Suppression.objects.values_list("pk", flat=True)) == [other.pk]


def test_delete_missing_entry_404(client: Client) -> None:
    entry, _ = suppress(
        email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk
    )
    url = delete_url(entry)
    entry.delete()

    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404


def test_admin_lists_and_filters(admin_client: Client) -> None:
    suppress(
        email="ada@example.com",
        reason=SuppressionReason.UNSUBSCRIBED,
        workspace_id=operator_workspace().pk,
    )
    suppress(phone="+12025550101", reason=OPERATOR, workspace_id=operator_workspace().pk)
    url = reverse("admin:suppressions_suppression_changelist")

    filtered = admin_client.get(url, {"reason__exact": "unsubscribed"}).content.decode()
    searched = admin_client.get(url, {"q": "555"}).content.decode()

    assert "ada@example.com" in filtered
    assert "+12025550101" not in filtered
    assert "+12025550101" in searched
    assert "ada@example.com" not in searched


def test_admin_add_cleans_and_rejects_duplicate(admin_client: Client) -> None:
    url = reverse("admin:suppressions_suppression_add")
    form = {
        "workspace": operator_workspace().pk,
        "email": " Ada@Example.COM ",
        "phone": "",
        "reason": "operator",
    }

    first = admin_client.post(url, form)
    second = admin_client.post(url, {**form, "email": "ada@example.com"})

    assert first.status_code == 302
    assert Suppression.objects.get().email == "Ada@example.com"
    assert second.status_code == 200
    assert "This email address is already on the suppression list." in second.content.decode()
    assert Suppression.objects.count() == 1


def test_admin_rejects_both_addresses(admin_client: Client) -> None:
    url = reverse("admin:suppressions_suppression_add")
    form = {"email": "ada@example.com", "phone": "+12025550101", "reason": "operator"}

    response = admin_client.post(url, form)

    assert response.status_code == 200
    assert "Enter an email address or a phone number, not both." in response.content.decode()
    assert not Suppression.objects.exists()
