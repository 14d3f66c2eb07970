"""The database's CHECK constraints, unique indexes and indexes on campaigns and recipients.

Bad values go in through `QuerySet.update()` or raw SQL, which skip model code,
so each rejection comes from PostgreSQL itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, DeliveryAttempt, Recipient
from tests.factories import operator_workspace

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
    # The model's defaults live in Python, not in the table, so a raw INSERT
    # names every NOT NULL column.
    with (
        pytest.raises(IntegrityError) as raised,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"INSERT INTO {Campaign._meta.db_table}"
            " (workspace_id, name, status, created_at, pause_reason, processed_since_resume,"
            " failed_since_resume)"
            " VALUES (%s, 'Raw insert', 'bogus', now(), '', 0, 0)",
            [operator_workspace().pk],
        )

    assert violated_constraint(raised.value) == "campaign_status_valid"


@pytest.mark.parametrize("status", Campaign.Status.values)
def test_every_campaign_status_accepted(campaign: Campaign, status: str) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=status)

    campaign.refresh_from_db()
    assert campaign.status == status


@pytest.mark.parametrize("rate", [0.0, -1.0, -0.001])
def test_non_positive_rate_limit_rejected(campaign: Campaign, rate: float) -> None:
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(rate_limit_per_second=rate)

    assert violated_constraint(raised.value) == "campaign_rate_limit_positive"


@pytest.mark.parametrize("rate", [None, 0.001, 2.5, 1000.0])
def test_positive_or_empty_rate_limit_accepted(campaign: Campaign, rate: float | None) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(rate_limit_per_second=rate)

    campaign.refresh_from_db()
    assert campaign.rate_limit_per_second == rate


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


@pytest.mark.parametrize(
    "status",
    [status for status in Recipient.Status.values if status != Recipient.Status.IN_FLIGHT],
)
def test_recipient_statuses_accepted(campaign: Campaign, status: str) -> None:
    recipient = Recipient.objects.create(campaign=campaign, email="ada@example.com")

    Recipient.objects.filter(pk=recipient.pk).update(status=status)

    recipient.refresh_from_db()
    assert recipient.status == status


def test_in_flight_with_lease_accepted(campaign: Campaign) -> None:
    recipient = Recipient.objects.create(campaign=campaign, email="ada@example.com")
    token = uuid.uuid4()
    lease_expires_at = timezone.now() + timedelta(seconds=60)

    Recipient.objects.filter(pk=recipient.pk).update(
        status=Recipient.Status.IN_FLIGHT, claim_token=token, lease_expires_at=lease_expires_at
    )

    recipient.refresh_from_db()
    assert recipient.status == Recipient.Status.IN_FLIGHT
    assert recipient.claim_token == token


@pytest.mark.parametrize(
    ("has_token", "has_lease"),
    [(False, False), (True, False), (False, True)],
    ids=["neither", "token-only", "lease-only"],
)
def test_in_flight_without_lease_rejected(
    campaign: Campaign, has_token: bool, has_lease: bool
) -> None:
    recipient = Recipient.objects.create(campaign=campaign, email="ada@example.com")
    token = uuid.uuid4() if has_token else None
    lease_expires_at = timezone.now() + timedelta(seconds=60) if has_lease else None

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.filter(pk=recipient.pk).update(
            status=Recipient.Status.IN_FLIGHT, claim_token=token, lease_expires_at=lease_expires_at
        )

    assert violated_constraint(raised.value) == "recipient_in_flight_has_lease"


def test_clearing_lease_of_in_flight_rejected(campaign: Campaign) -> None:
    recipient = Recipient.objects.create(campaign=campaign, email="ada@example.com")
    Recipient.objects.filter(pk=recipient.pk).update(
        status=Recipient.Status.IN_FLIGHT,
        claim_token=uuid.uuid4(),
        lease_expires_at=timezone.now() + timedelta(seconds=60),
    )

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Recipient.objects.filter(pk=recipient.pk).update(lease_expires_at=None)

    assert violated_constraint(raised.value) == "recipient_in_flight_has_lease"


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


def make_attempt(campaign: Campaign, outcome: str) -> DeliveryAttempt:
    recipient = Recipient.objects.create(campaign=campaign, email="ada@example.com")
    now = timezone.now()
    return DeliveryAttempt.objects.create(
        recipient=recipient,
        campaign=campaign,
        number=1,
        started_at=now,
        finished_at=now,
        outcome=outcome,
    )


@pytest.mark.parametrize("outcome", DeliveryAttempt.Outcome.values)
def test_every_attempt_outcome_accepted(campaign: Campaign, outcome: str) -> None:
    attempt = make_attempt(campaign, outcome)

    attempt.refresh_from_db()
    assert attempt.outcome == outcome


@pytest.mark.parametrize("outcome", ["bogus", "", "failed", "queued"])
def test_unknown_attempt_outcome_rejected(campaign: Campaign, outcome: str) -> None:
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        make_attempt(campaign, outcome)

    assert violated_constraint(raised.value) == "attempt_outcome_valid"


def test_campaign_status_index_exists() -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Recipient._meta.db_table)

    index = constraints.get("recipient_campaign_status_id")
    assert index is not None
    assert index["index"] is True
    assert index["columns"] == ["campaign_id", "status", "id"]
    # The index above replaced this one, whose columns it starts with.
    assert "recipient_campaign_status" not in constraints


@pytest.mark.parametrize(
    ("name", "columns", "status"),
    [
        ("recipient_claim_order", ["campaign_id", "next_attempt_at", "id"], "queued"),
        ("recipient_lease", ["lease_expires_at"], "in_flight"),
    ],
)
def test_engine_partial_indexes_exist(name: str, columns: list[str], status: str) -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Recipient._meta.db_table)
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        row = cursor.fetchone()

    index = constraints.get(name)
    assert index is not None
    assert index["index"] is True
    assert index["columns"] == columns
    # Django's introspection omits an index's condition, so it is read from pg_indexes.
    assert row is not None
    definition = row[0]
    assert f"WHERE ((status)::text = '{status}'::text)" in definition, definition
