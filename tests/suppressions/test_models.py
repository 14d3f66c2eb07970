"""The suppression list's constraints, normalisation and lookup helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign
from suppressions.models import (
    Suppression,
    SuppressionReason,
    is_suppressed,
    suppress,
    suppressed_among,
)
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db

OPERATOR = SuppressionReason.OPERATOR


def violated_constraint(error: IntegrityError) -> str:
    """Return the name of the constraint or unique index that PostgreSQL reported."""
    return error.__cause__.diag.constraint_name  # type: ignore[union-attr]


def insert_raw(email: str, phone: str, reason: str = "operator") -> None:
    """Insert a row with SQL, skipping the model's normalisation."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO suppressions_suppression (workspace_id, email, phone, reason, created_at) "
            "VALUES (%s, %s, %s, %s, now())",
            [operator_workspace().pk, email, phone, reason],
        )


def test_save_normalises_email() -> None:
    entry = Suppression.objects.create(
        email="  Ada@Example.COM ", reason=OPERATOR, workspace=operator_workspace()
    )

    entry.refresh_from_db()
    assert entry.email == "Ada@example.com"


def test_save_normalises_phone() -> None:
    entry = Suppression.objects.create(
        phone="+1 (202) 555-0101", reason=OPERATOR, workspace=operator_workspace()
    )

    entry.refresh_from_db()
    assert entry.phone == "+12025550101"


def test_email_unique_ignoring_case() -> None:
    Suppression.objects.create(
        email="Ada@Example.COM ", reason=OPERATOR, workspace=operator_workspace()
    )

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Suppression.objects.create(
            email="ada@example.com", reason=OPERATOR, workspace=operator_workspace()
        )

    assert violated_constraint(raised.value) == "suppression_workspace_email"


def test_phone_unique_after_normalisation() -> None:
    Suppression.objects.create(
        phone="+1 (202) 555-0101", reason=OPERATOR, workspace=operator_workspace()
    )

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        Suppression.objects.create(
            phone="+12025550101", reason=OPERATOR, workspace=operator_workspace()
        )

    assert violated_constraint(raised.value) == "suppression_workspace_phone"


@pytest.mark.parametrize(
    ("email", "phone"), [("", ""), ("ada@example.com", "+12025550101"), (" ", "")]
)
def test_exactly_one_address_required(email: str, phone: str) -> None:
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        insert_raw(email, phone)

    assert violated_constraint(raised.value) == "suppression_email_xor_phone"


def test_unknown_reason_rejected() -> None:
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        insert_raw("ada@example.com", "", reason="bogus")

    assert violated_constraint(raised.value) == "suppression_reason_valid"


def test_many_emails_and_phones_coexist() -> None:
    Suppression.objects.create(
        email="ada@example.com", reason=OPERATOR, workspace=operator_workspace()
    )
    Suppression.objects.create(
        email="grace@example.com", reason=OPERATOR, workspace=operator_workspace()
    )
    Suppression.objects.create(
        phone="+12025550101", reason=OPERATOR, workspace=operator_workspace()
    )
    Suppression.objects.create(
        phone="+12025550102", reason=OPERATOR, workspace=operator_workspace()
    )

    assert Suppression.objects.count() == 4


def test_deleting_campaign_keeps_entry(make_campaign: Callable[..., Campaign]) -> None:
    campaign = make_campaign()
    entry, _ = suppress(
        email="ada@example.com",
        reason=OPERATOR,
        campaign_id=campaign.pk,
        workspace_id=operator_workspace().pk,
    )

    campaign.delete()

    entry.refresh_from_db()
    assert entry.source_campaign is None


def test_suppress_creates_then_finds() -> None:
    first, first_created = suppress(
        email="Ada@Example.COM ",
        reason=SuppressionReason.UNSUBSCRIBED,
        workspace_id=operator_workspace().pk,
    )
    second, second_created = suppress(
        email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk
    )

    assert first_created is True
    assert second_created is False
    assert second.pk == first.pk
    # The first reason stays.
    assert second.reason == SuppressionReason.UNSUBSCRIBED
    assert Suppression.objects.count() == 1


def test_suppress_phone_idempotent() -> None:
    first, first_created = suppress(
        phone="+1 (202) 555-0101", reason=OPERATOR, workspace_id=operator_workspace().pk
    )
    second, second_created = suppress(
        phone="+12025550101", reason=OPERATOR, workspace_id=operator_workspace().pk
    )

    assert first_created is True
    assert second_created is False
    assert second.pk == first.pk
    assert first.phone == "+12025550101"


def test_suppress_records_campaign(make_campaign: Callable[..., Campaign]) -> None:
    campaign = make_campaign()

    entry, _ = suppress(
        email="ada@example.com",
        reason=SuppressionReason.UNSUBSCRIBED,
        campaign_id=campaign.pk,
        workspace_id=operator_workspace().pk,
    )

    assert Suppression.objects.get(pk=entry.pk).source_campaign_id == campaign.pk


@pytest.mark.parametrize(
    ("email", "phone"), [("", ""), ("ada@example.com", "+12025550101"), ("  ", "")]
)
def test_suppress_needs_one_address(email: str, phone: str) -> None:
    with pytest.raises(ValueError, match="not both"):
        suppress(email=email, phone=phone, reason=OPERATOR, workspace_id=operator_workspace().pk)

    assert not Suppression.objects.exists()


def test_suppress_rejects_unknown_reason() -> None:
    with pytest.raises(ValueError, match="not a suppression reason"):
        suppress(email="ada@example.com", reason="bogus", workspace_id=operator_workspace().pk)


def test_is_suppressed_matches_normalised_values() -> None:
    suppress(email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk)
    suppress(phone="+12025550101", reason=OPERATOR, workspace_id=operator_workspace().pk)

    assert is_suppressed("Ada@Example.COM ", "", workspace_id=operator_workspace().pk)
    assert is_suppressed("", "+1 (202) 555-0101", workspace_id=operator_workspace().pk)
    assert is_suppressed("other@example.com", "+12025550101", workspace_id=operator_workspace().pk)
    assert not is_suppressed(
        "other@example.com", "+12025550102", workspace_id=operator_workspace().pk
    )
    assert not is_suppressed("", "", workspace_id=operator_workspace().pk)


def test_suppressed_among_returns_given_values() -> None:
    suppress(email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk)
    suppress(email="Grace@Example.org", reason=OPERATOR, workspace_id=operator_workspace().pk)
    suppress(phone="+12025550101", reason=OPERATOR, workspace_id=operator_workspace().pk)

    found = suppressed_among(
        ["ADA@example.com", "grace@example.org", "alan@example.com", ""],
        ["+1 202-555-0101", "+12025550102", ""],
        workspace_id=operator_workspace().pk,
    )

    assert found.emails == {"ADA@example.com", "grace@example.org"}
    assert found.phones == {"+1 202-555-0101"}


def test_suppressed_among_one_query_each() -> None:
    suppress(email="ada@example.com", reason=OPERATOR, workspace_id=operator_workspace().pk)
    emails = [f"user{n}@example.com" for n in range(200)] + ["ada@example.com"]
    phones = [f"+1202555{n:04d}" for n in range(200)]
    workspace_id = operator_workspace().pk

    with CaptureQueriesContext(connection) as queries:
        found = suppressed_among(emails, phones, workspace_id=workspace_id)

    assert len(queries.captured_queries) == 2
    assert found.emails == {"ada@example.com"}
    assert found.phones == set()


def test_suppressed_among_empty_inputs_no_query() -> None:
    workspace_id = operator_workspace().pk

    with CaptureQueriesContext(connection) as queries:
        found = suppressed_among([], [""], workspace_id=workspace_id)

    assert len(queries.captured_queries) == 0
    assert found.emails == set()
    assert found.phones == set()


def test_email_lookup_uses_unique_index() -> None:
    for n in range(50):
        Suppression.objects.create(
            email=f"user{n}@example.com", reason=OPERATOR, workspace=operator_workspace()
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE suppressions_suppression")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT 1 FROM suppressions_suppression AS s "
            "WHERE s.workspace_id = %s AND lower(s.email) = lower(%s) AND s.email <> ''",
            [operator_workspace().pk, "user3@example.com"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "suppression_workspace_email" in plan
