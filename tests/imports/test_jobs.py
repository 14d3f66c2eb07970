"""The import job: validation, duplicates, the report, atomicity and cancellation."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from campaigns.models import Campaign, Recipient
from imports import jobs
from imports.jobs import run_import, staging_table
from imports.models import ImportIssue, RecipientImport
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db


def recipients(campaign: Campaign) -> list[tuple[str, str, str]]:
    return list(campaign.recipients.order_by("id").values_list("name", "email", "phone_number"))


def issues(recipient_import: RecipientImport) -> list[tuple[int, str, str]]:
    return list(recipient_import.issues.order_by("line").values_list("line", "kind", "reason"))


def staging_exists(import_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [staging_table(import_id)])
        row = cursor.fetchone()
    return row is not None and row[0] is not None


def test_valid_rows_added_normalised_in_order(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(
        campaign,
        "name,email,phone\n"
        "  Ada\u00a0Lovelace ,Ada@Example.COM,+1 (202) 555-0101\n"
        "Grace Hopper,,202.555.0102\n"
        "Alan Turing,\u200balan@example.com,\n",
    )

    assert run_import(recipient_import.pk) is True

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.COMPLETED
    assert recipients(campaign) == [
        ("Ada Lovelace", "Ada@example.com", "+12025550101"),
        ("Grace Hopper", "", "+12025550102"),
        ("Alan Turing", "alan@example.com", ""),
    ]
    assert (recipient_import.rows_read, recipient_import.rows_added) == (3, 3)
    assert (recipient_import.rows_invalid, recipient_import.rows_duplicate) == (0, 0)
    assert recipient_import.bytes_read == recipient_import.file_size
    assert campaign.progress().queued == 3
    assert not staging_exists(recipient_import.pk)
    # The file is no longer needed once its rows are in.
    assert not recipient_import.path.exists()


def test_invalid_rows_reported_with_raw_values(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(
        campaign,
        "name,email,phone\n"
        "Ada,ada@example.com,\n"
        "Bad email,ada@@example.com,\n"
        '"Quoted\nName",,4.47700E+11\n'
        "Nobody,,\n"
        "Grace,grace@example.com,not a number\n",
    )

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipients(campaign) == [("Ada", "ada@example.com", "")]
    assert recipient_import.rows_invalid == 4
    report = list(
        recipient_import.issues.order_by("line").values_list(
            "line", "kind", "name", "email", "phone"
        )
    )
    assert report == [
        (3, "invalid", "Bad email", "ada@@example.com", ""),
        # A record with a quoted newline is reported at the line where it starts.
        (4, "invalid", "Quoted\nName", "", "4.47700E+11"),
        (6, "invalid", "Nobody", "", ""),
        (7, "invalid", "Grace", "grace@example.com", "not a number"),
    ]
    reasons = [reason for _line, _kind, reason in issues(recipient_import)]
    assert reasons[0].startswith("Email: ")
    assert "scientific notation" in reasons[1]
    assert reasons[2] == "No email address or phone number."
    assert reasons[3].startswith("Phone: ")


def test_duplicates_within_file_skipped(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(
        campaign,
        "name,email,phone\n"
        "Ada,ada@example.com,+12025550101\n"
        "Ada again,ADA@EXAMPLE.COM,\n"
        "Same phone,,(202) 555-0101\n"
        "Grace,grace@example.com,\n",
    )

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipients(campaign) == [
        ("Ada", "ada@example.com", "+12025550101"),
        ("Grace", "grace@example.com", ""),
    ]
    assert issues(recipient_import) == [
        (3, "duplicate", "Duplicate: line 2 has the same email address."),
        (4, "duplicate", "Duplicate: line 2 has the same phone number."),
    ]
    assert (recipient_import.rows_added, recipient_import.rows_duplicate) == (2, 2)
    # The report keeps the values as the file had them.
    assert recipient_import.issues.get(line=4).phone == "(202) 555-0101"


def test_rows_already_in_campaign_skipped(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    Recipient.objects.create(campaign=campaign, name="Ada", email="Ada@Example.com")
    Recipient.objects.create(campaign=campaign, name="Grace", phone_number="+12025550102")
    recipient_import = queued_import(
        campaign,
        "name,email,phone\nAda,ada@example.com,\nGrace,,+1 202 555 0102\nAlan,alan@example.com,\n",
    )

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert [name for name, _e, _p in recipients(campaign)] == ["Ada", "Grace", "Alan"]
    assert issues(recipient_import) == [
        (2, "duplicate", "Duplicate: a recipient of the campaign has this email address."),
        (3, "duplicate", "Duplicate: a recipient of the campaign has this phone number."),
    ]


def test_first_and_last_names_joined(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(
        campaign,
        "First;Last;Mail\nAda;Lovelace;ada@example.com\n;Hopper;grace@example.com\n",
        delimiter=";",
        first_name_column=0,
        last_name_column=1,
        email_column=2,
    )

    run_import(recipient_import.pk)

    assert [name for name, _e, _p in recipients(campaign)] == ["Ada Lovelace", "Hopper"]


def test_headerless_file_keeps_first_row(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(
        campaign, "ada@example.com\ngrace@example.com\n", has_header=False, email_column=0
    )

    run_import(recipient_import.pk)

    assert [email for _n, email, _p in recipients(campaign)] == [
        "ada@example.com",
        "grace@example.com",
    ]


def test_phones_read_in_import_region(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(campaign, "name,email,phone\nAda,,07911 123456\n", region="GB")

    run_import(recipient_import.pk)

    assert recipients(campaign) == [("Ada", "", "+447911123456")]


def test_header_only_file_adds_nothing(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(campaign, "name,email,phone\n")

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.COMPLETED
    assert (recipient_import.rows_read, recipient_import.rows_added) == (0, 0)


def test_windows_1252_file(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(
        campaign, "name,email,phone\nRené “Ren” Müller,rene@example.com,\n", encoding="cp1252"
    )

    run_import(recipient_import.pk)

    assert recipients(campaign) == [("René “Ren” Müller", "rene@example.com", "")]


def test_row_limit_fails_import(queued_import: Any, settings: Any) -> None:
    settings.IMPORT_MAX_ROWS = 2
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(
        campaign, "name,email,phone\na,a@example.com,\nb,b@example.com,\nc,c@example.com,\n"
    )

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.FAILED
    assert "more than 2 rows" in recipient_import.error
    assert not campaign.recipients.exists()


def test_import_runs_once(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(campaign, "name,email,phone\nAda,ada@example.com,\n")

    assert run_import(recipient_import.pk) is True
    assert run_import(recipient_import.pk) is False

    assert campaign.recipients.count() == 1


def test_missing_file_fails_import(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(campaign, "name,email,phone\nAda,ada@example.com,\n")
    recipient_import.path.unlink()

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.FAILED
    assert "Upload it again" in recipient_import.error


def test_dispatched_campaign_gets_nothing(queued_import: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    Recipient.objects.create(campaign=campaign, email="first@example.com")
    recipient_import = queued_import(campaign, "name,email,phone\nAda,ada@example.com,\n")
    # The campaign leaves `pending` after the import was queued, as a
    # dispatch that won the race would make it.
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PROCESSING)

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.FAILED
    assert "only adds recipients to a pending campaign" in recipient_import.error
    assert campaign.recipients.count() == 1
    assert not staging_exists(recipient_import.pk)


def test_final_transaction_error_adds_nothing(
    queued_import: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    recipient_import = queued_import(
        campaign,
        "name,email,phone\nAda,ada@example.com,\nGrace,grace@example.com,\nAda,ada@example.com,\n",
    )
    # Without the duplicate check, the insert of the third row violates the
    # campaign's unique index after the first two rows went in.
    monkeypatch.setattr(jobs, "_mark_duplicates", lambda cursor, table, campaign_id: 0)

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.FAILED
    assert "nothing was added" in recipient_import.error
    assert not campaign.recipients.exists()
    assert not ImportIssue.objects.filter(recipient_import=recipient_import).exists()
    assert not staging_exists(recipient_import.pk)


def test_read_error_adds_nothing(queued_import: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    rows = "".join(f"P{n},p{n}@example.com,\n" for n in range(20))
    recipient_import = queued_import(campaign, "name,email,phone\n" + rows)
    monkeypatch.setattr(jobs, "CHUNK_ROWS", 5)
    staged: list[int] = []
    copy_rows = jobs.validation.copy_rows

    def failing_copy(*args: Any) -> tuple[int, int]:
        # The first chunks reach the staging table; then the job dies.
        if len(staged) == 2:
            raise OSError("disk gone")
        staged.append(1)
        return copy_rows(*args)

    monkeypatch.setattr(jobs.validation, "copy_rows", failing_copy)

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.FAILED
    assert not campaign.recipients.exists()
    assert not staging_exists(recipient_import.pk)


def test_cancel_during_run_adds_nothing(
    queued_import: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    rows = "".join(f"P{n},p{n}@example.com,\n" for n in range(20))
    recipient_import = queued_import(campaign, "name,email,phone\n" + rows)
    monkeypatch.setattr(jobs, "CHUNK_ROWS", 5)

    def cancel(running: RecipientImport, counts: jobs.Counts) -> None:
        running.transition([RecipientImport.Status.RUNNING], RecipientImport.Status.CANCELLED)

    run_import(recipient_import.pk, on_progress=cancel)

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.CANCELLED
    assert not campaign.recipients.exists()


def test_progress_published_on_stream(queued_import: Any, listen: Any) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    listener = listen(campaign)
    recipient_import = queued_import(campaign, "name,email,phone\nAda,ada@example.com,\n")

    run_import(recipient_import.pk)

    entries = listener.entries()
    assert [entry.fields.get("id") for entry in entries if entry.kind == "import"][:1] == [
        str(recipient_import.pk)
    ]
    # The completed import requests that the campaign's pages load again.
    assert entries[-1].kind == "refresh"


@pytest.mark.django_db(transaction=True)
def test_worker_processes_validate_rows(
    queued_import: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # Worker processes read the staging table through their own connections,
    # so this test commits its data (transaction=True).
    settings.IMPORT_PROCESSES = 2
    monkeypatch.setattr(jobs, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(jobs, "CHUNK_ROWS", 100)
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    rows = "".join(f"P{n},p{n}@example.com,\n" for n in range(1000))
    recipient_import = queued_import(campaign, "name,email,phone\n" + rows + "Bad,bad@,\n")

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.COMPLETED, recipient_import.error
    assert recipient_import.rows_added == 1000
    assert [line for line, _kind, _reason in issues(recipient_import)] == [1002]
    emails = list(campaign.recipients.order_by("id").values_list("email", flat=True))
    assert emails == [f"p{n}@example.com" for n in range(1000)]
