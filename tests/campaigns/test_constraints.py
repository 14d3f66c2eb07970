"""The database's CHECK constraints, unique indexes and indexes on campaigns and recipients.

Bad values go in through `QuerySet.update()` or raw SQL, which skip model code,
so each rejection comes from PostgreSQL itself.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, transaction

from campaigns.models import Campaign, Recipient

pytestmark = pytest.mark.django_db


def violated_constraint(error: IntegrityError) -> str:
    """Return the name of the constraint or unique index that PostgreSQL reported."""
    return error.__cause__.diag.constraint_name  # type: ignore[union-attr]


@pytest.fixture
def campaign(make_campaign: Callable[..., Campaign]) -> Campaign:
    return make_campaign(recipients=[])


def test_unknown_campaign_status_rejected(campaign: Campaign) -> None:
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(status="bogus")

    assert violated_constraint(raised.value) == "campaign_status_valid"


def test_unknown_campaign_status_insert_rejected() -> None:
    with (
        pytest.raises(IntegrityError) as raised,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"INSERT INTO {Campaign._meta.db_table} (name, status, created_at)"
            " VALUES ('Raw insert', 'bogus', now())"
        )

    assert violated_constraint(raised.value) == "campaign_status_valid"


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_blank_campaign_name_rejected(campaign: Campaign, name: str) -> None:
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(name=name)

    assert violated_constraint(raised.value) == "campaign_name_not_blank"


def test_unknown_recipient_status_rejected(campaign: Campaign) -> None:
    recipient = Recipient.objects.create(campaign=campaign, email="ada@example.com")

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.filter(pk=recipient.pk).update(status="bogus")

    assert violated_constraint(raised.value) == "recipient_status_valid"


def test_recipient_without_contact_rejected(campaign: Campaign) -> None:
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.create(campaign=campaign, name="Nobody")

    assert violated_constraint(raised.value) == "recipient_has_email_or_phone"


@pytest.mark.parametrize(
    ("email", "phone_number"),
    [("   ", ""), ("", " \t "), ("  ", "  ")],
    ids=["blank-email", "blank-phone", "both-blank"],
)
def test_recipient_with_whitespace_contact_rejected(
    campaign: Campaign, email: str, phone_number: str
) -> None:
    recipient = Recipient.objects.create(campaign=campaign, email="ada@example.com")

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.filter(pk=recipient.pk).update(email=email, phone_number=phone_number)

    assert violated_constraint(raised.value) == "recipient_has_email_or_phone"


def test_same_email_twice_rejected(campaign: Campaign) -> None:
    Recipient.objects.create(campaign=campaign, email="ada@example.com")

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.create(campaign=campaign, email="ada@example.com")

    assert violated_constraint(raised.value) == "recipient_unique_email_per_campaign"


def test_same_email_other_case_rejected(campaign: Campaign) -> None:
    # save() lower-cases only the domain, so the two local parts reach the
    # database with different case and only the Lower() index can match them.
    Recipient.objects.create(campaign=campaign, email="Ada@Example.com")

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.create(campaign=campaign, email="ada@example.com")

    assert violated_constraint(raised.value) == "recipient_unique_email_per_campaign"


def test_same_phone_twice_rejected(campaign: Campaign) -> None:
    Recipient.objects.create(campaign=campaign, phone_number="+12025550101")

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.create(campaign=campaign, phone_number="+12025550101")

    assert violated_constraint(raised.value) == "recipient_unique_phone_per_campaign"


def test_same_phone_other_spacing_rejected(campaign: Campaign) -> None:
    Recipient.objects.create(campaign=campaign, phone_number="+1 202 555 0101")

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.create(campaign=campaign, phone_number="+12025550101")

    assert violated_constraint(raised.value) == "recipient_unique_phone_per_campaign"


def test_many_recipients_without_email_allowed(campaign: Campaign) -> None:
    for phone_number in ["+12025550101", "+12025550102", "+12025550103"]:
        Recipient.objects.create(campaign=campaign, phone_number=phone_number)

    assert campaign.recipients.filter(email="").count() == 3


def test_many_recipients_without_phone_allowed(campaign: Campaign) -> None:
    for email in ["ada@example.com", "grace@example.com", "alan@example.com"]:
        Recipient.objects.create(campaign=campaign, email=email)

    assert campaign.recipients.filter(phone_number="").count() == 3


def test_same_contact_in_two_campaigns_allowed(make_campaign: Callable[..., Campaign]) -> None:
    row = {"email": "ada@example.com", "phone_number": "+12025550101"}
    first = make_campaign(name="First", recipients=[row])
    second = make_campaign(name="Second", recipients=[row])

    assert first.recipients.filter(email="ada@example.com").count() == 1
    assert second.recipients.filter(email="ada@example.com").count() == 1


def test_campaign_status_index_exists() -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Recipient._meta.db_table)

    index = constraints.get("recipient_campaign_status")
    assert index is not None
    assert index["index"] is True
    assert index["columns"] == ["campaign_id", "status"]
