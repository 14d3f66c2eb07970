"""The import pages: upload, column mapping, confirm, discard, cancel, run again, report."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.messages import get_messages
from django.http import StreamingHttpResponse
from django.test import AsyncClient, Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from campaigns.models import Campaign
from imports import report as report_csv
from imports.models import ImportIssue, RecipientImport
from tests.imports.conftest import FILES, make_import, stored_files, upload_file

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]
JobQueue = Callable[..., list[dict[str, Any]]]

CSV = b"Full name,E-mail Address,Mobile\nAda Lovelace,ada@example.com,+44 7700 900123\n"


def flash(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def import_tasks(job_queue: JobQueue) -> list[list[Any]]:
    """The arguments of every import job waiting in the queues."""
    return [
        message["headers"]["argsrepr"]
        for message in job_queue()
        if message["headers"]["task"] == "imports.run_import"
    ]


def url(name: str, recipient_import: RecipientImport) -> str:
    return reverse(f"imports:{name}", args=[recipient_import.campaign_id, recipient_import.pk])


# Upload


def test_upload_creates_import_with_guess(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()

    response = upload_file(client, campaign, "people.csv", CSV)

    recipient_import = RecipientImport.objects.get()
    assert response.status_code == 303
    assert response["Location"] == recipient_import.get_absolute_url()
    assert recipient_import.status == RecipientImport.Status.MAPPING
    assert recipient_import.file_name == "people.csv"
    assert recipient_import.file_size == len(CSV)
    assert (recipient_import.encoding, recipient_import.delimiter) == ("utf-8", ",")
    assert recipient_import.column_titles == ["Full name", "E-mail Address", "Mobile"]
    assert recipient_import.mapping() == {"name": 0, "email": 1, "phone": 2}
    assert recipient_import.phone_region == "US"
    assert stored_files(import_dir) == [recipient_import.stored_name]
    assert recipient_import.path.read_bytes() == CSV


def test_mapping_page_shows_guess(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()
    upload_file(client, campaign, "people.csv", CSV)
    recipient_import = RecipientImport.objects.get()

    html = client.get(recipient_import.get_absolute_url()).content.decode()

    assert "people.csv" in html
    assert "UTF-8" in html
    assert "comma" in html
    assert '<option value="1" selected>B · E-mail Address (ada@example.com)</option>' in html
    assert '<option value="2" selected>C · Mobile (+44 7700 900123)</option>' in html
    assert "— not in the file —" in html
    assert 'name="has_header" id="id_has_header" checked' in html


def test_upload_over_limit_by_count(
    client: Client, make_campaign: MakeCampaign, import_dir: Path, settings: Settings
) -> None:
    # Within the Content-Length allowance, so the handler counts the bytes.
    settings.IMPORT_MAX_FILE_MEGABYTES = 1
    campaign = make_campaign()
    content = CSV + b"x" * (1024 * 1024)

    response = upload_file(client, campaign, "big.csv", content)

    assert response.status_code == 422
    assert "The file is 1.0 MB; the largest file an import takes is 1 MB." in (
        response.content.decode()
    )
    assert not RecipientImport.objects.exists()
    assert stored_files(import_dir) == []


def test_upload_over_limit_by_length(
    client: Client, make_campaign: MakeCampaign, import_dir: Path, settings: Settings
) -> None:
    settings.IMPORT_MAX_FILE_MEGABYTES = 1
    campaign = make_campaign()
    content = CSV * (3 * 1024 * 1024 // len(CSV))

    response = upload_file(client, campaign, "big.csv", content)

    assert response.status_code == 422
    assert "The file is 3.0 MB; the largest file an import takes is 1 MB." in (
        response.content.decode()
    )
    assert not RecipientImport.objects.exists()
    assert stored_files(import_dir) == []


def test_upload_not_csv_rejected(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()

    response = upload_file(client, campaign, "photo.png", (FILES / "image.png").read_bytes())

    assert response.status_code == 422
    assert "This is a PNG image, not a CSV file." in response.content.decode()
    assert not RecipientImport.objects.exists()
    assert stored_files(import_dir) == []


def test_upload_without_file_rejected(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()

    response = client.post(reverse("imports:new", args=[campaign.pk]), {})

    assert response.status_code == 422
    assert "Choose a CSV file to import." in response.content.decode()


def test_upload_refused_when_dispatched(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()
    assert campaign.start()

    page = client.get(reverse("imports:new", args=[campaign.pk]))
    response = upload_file(client, campaign, "people.csv", CSV)

    assert page.status_code == 303
    assert response.status_code == 303
    assert response["Location"] == campaign.get_absolute_url()
    assert "nothing can be imported into it" in flash(response)[0]
    assert not RecipientImport.objects.exists()
    assert stored_files(import_dir) == []


def test_upload_requires_csrf_token(
    signed_in: Callable[..., Client], make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()
    client = signed_in(enforce_csrf_checks=True)

    response = upload_file(client, campaign, "people.csv", CSV)

    assert response.status_code == 403
    assert not RecipientImport.objects.exists()
    assert stored_files(import_dir) == []


def test_wrong_campaign_is_not_found(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()
    other = make_campaign(name="Other")
    recipient_import = make_import(campaign, import_dir)

    # The report, an async view, is covered by test_report_wrong_campaign.
    response = client.get(reverse("imports:detail", args=[other.pk, recipient_import.pk]))
    assert response.status_code == 404
    for name in ("confirm", "discard", "cancel", "run_again"):
        response = client.post(reverse(f"imports:{name}", args=[other.pk, recipient_import.pk]))
        assert response.status_code == 404, name


# Mapping


def mapping_data(**fields: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "0",
        "first_name": "",
        "last_name": "",
        "email": "1",
        "phone": "2",
        "has_header": "on",
        "phone_region": "GB",
    }
    data.update(fields)
    return data


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"email": "", "phone": ""},
            "Choose the column of email addresses or the column of phone numbers",
        ),
        ({"phone": "1"}, "Column B already fills Email; a column can fill one field only."),
        ({"first_name": "0", "name": "2", "phone": ""}, "Choose either a Name column"),
        ({"email": "7"}, "Select a valid choice."),
        ({"phone_region": "XX"}, "Select a valid choice."),
    ],
)
def test_mapping_errors(
    client: Client,
    make_campaign: MakeCampaign,
    import_dir: Path,
    job_queue: JobQueue,
    fields: dict[str, object],
    error: str,
) -> None:
    recipient_import = make_import(make_campaign(), import_dir)

    response = client.post(url("confirm", recipient_import), mapping_data(**fields))

    recipient_import.refresh_from_db()
    assert response.status_code == 422
    assert error in response.content.decode()
    assert recipient_import.status == RecipientImport.Status.MAPPING
    assert import_tasks(job_queue) == []


def test_confirm_queues_import(
    client: Client,
    make_campaign: MakeCampaign,
    import_dir: Path,
    job_queue: JobQueue,
    django_capture_on_commit_callbacks: Any,
) -> None:
    recipient_import = make_import(make_campaign(), import_dir, name_column=None)
    data = mapping_data(name="", first_name="0", email="", phone="2", has_header="")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("confirm", recipient_import), data)

    recipient_import.refresh_from_db()
    assert response.status_code == 303
    assert response["Location"] == recipient_import.get_absolute_url()
    assert recipient_import.status == RecipientImport.Status.QUEUED
    assert recipient_import.mapping() == {"first_name": 0, "phone": 2}
    assert recipient_import.has_header is False
    assert recipient_import.phone_region == "GB"
    assert recipient_import.queued_at is not None
    assert import_tasks(job_queue) == [repr((recipient_import.pk,))]


def test_confirm_rejects_second_active_import(
    client: Client, make_campaign: MakeCampaign, import_dir: Path, job_queue: JobQueue
) -> None:
    campaign = make_campaign()
    make_import(campaign, import_dir, status=RecipientImport.Status.RUNNING)
    recipient_import = make_import(campaign, import_dir)

    response = client.post(url("confirm", recipient_import), mapping_data())

    recipient_import.refresh_from_db()
    assert response.status_code == 303
    assert "Another import into this campaign is queued or running." in flash(response)[0]
    assert recipient_import.status == RecipientImport.Status.MAPPING
    assert import_tasks(job_queue) == []


def test_confirm_refused_when_dispatched(
    client: Client, make_campaign: MakeCampaign, import_dir: Path, job_queue: JobQueue
) -> None:
    campaign = make_campaign()
    recipient_import = make_import(campaign, import_dir)
    # As a dispatch that commits between the check of the upload's status and
    # the campaign's row lock leaves it.
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PROCESSING)

    response = client.post(url("confirm", recipient_import), mapping_data())

    recipient_import.refresh_from_db()
    assert response.status_code == 303
    assert "nothing can be imported into it" in flash(response)[0]
    assert recipient_import.status == RecipientImport.Status.MAPPING
    assert import_tasks(job_queue) == []
    page = client.get(recipient_import.get_absolute_url()).content.decode()
    assert "can no longer be imported" in page
    assert "Discard the upload" in page
    assert 'name="email"' not in page


def test_dispatch_cancels_uploads_waiting_for_their_mapping(
    client: Client, make_campaign: MakeCampaign, import_dir: Path, job_queue: JobQueue
) -> None:
    campaign = make_campaign()
    recipient_import = make_import(campaign, import_dir)

    assert campaign.start()

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.CANCELLED
    response = client.post(url("confirm", recipient_import), mapping_data())
    assert "dispatched before this file's columns were confirmed" in flash(response)[0]
    assert import_tasks(job_queue) == []
    page = client.get(recipient_import.get_absolute_url()).content.decode()
    assert "dispatched before this file&#x27;s columns were confirmed" in page


def test_get_changes_nothing(client: Client, make_campaign: MakeCampaign, import_dir: Path) -> None:
    recipient_import = make_import(make_campaign(), import_dir)

    for name in ("confirm", "discard", "cancel", "run_again"):
        assert client.get(url(name, recipient_import)).status_code == 405, name

    recipient_import.refresh_from_db()
    assert recipient_import.status == RecipientImport.Status.MAPPING
    assert recipient_import.path.exists()


def test_discard_deletes_file(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()
    recipient_import = make_import(campaign, import_dir)

    response = client.post(url("discard", recipient_import))

    recipient_import.refresh_from_db()
    assert response.status_code == 303
    assert response["Location"] == campaign.get_absolute_url()
    assert recipient_import.status == RecipientImport.Status.CANCELLED
    assert stored_files(import_dir) == []


# Progress, cancel and run again


def test_cancel_queued_import(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    recipient_import = make_import(make_campaign(), import_dir, status="queued")

    response = client.post(url("cancel", recipient_import))

    recipient_import.refresh_from_db()
    assert response.status_code == 303
    assert recipient_import.status == RecipientImport.Status.CANCELLED
    assert recipient_import.finished_at is not None
    assert stored_files(import_dir) == []


def test_cancel_completed_import_refused(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    recipient_import = make_import(make_campaign(), import_dir, status="completed")

    response = client.post(url("cancel", recipient_import))

    recipient_import.refresh_from_db()
    assert "had already finished adding its rows" in flash(response)[0]
    assert recipient_import.status == RecipientImport.Status.COMPLETED


def test_run_again_queues_failed_import(
    client: Client,
    make_campaign: MakeCampaign,
    import_dir: Path,
    job_queue: JobQueue,
    django_capture_on_commit_callbacks: Any,
) -> None:
    recipient_import = make_import(
        make_campaign(), import_dir, status="failed", error="The worker stopped.", attempts=3
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("run_again", recipient_import))

    recipient_import.refresh_from_db()
    assert response.status_code == 303
    assert recipient_import.status == RecipientImport.Status.QUEUED
    assert recipient_import.error == ""
    assert recipient_import.queued_at is not None
    assert recipient_import.attempts == 0
    assert import_tasks(job_queue) == [repr((recipient_import.pk,))]


def test_run_again_without_file_refused(
    client: Client, make_campaign: MakeCampaign, import_dir: Path, job_queue: JobQueue
) -> None:
    recipient_import = make_import(make_campaign(), import_dir, status="failed")
    recipient_import.path.unlink()

    response = client.post(url("run_again", recipient_import))

    recipient_import.refresh_from_db()
    assert "The uploaded file is no longer there" in flash(response)[0]
    assert recipient_import.status == RecipientImport.Status.FAILED
    assert import_tasks(job_queue) == []


def test_progress_page_shows_counts(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    recipient_import = make_import(
        make_campaign(),
        import_dir,
        status="running",
        file_size=1000,
        bytes_read=420,
        rows_read=12345,
        rows_valid=12343,
        rows_invalid=2,
    )

    html = client.get(recipient_import.get_absolute_url()).content.decode()

    assert f'id="{recipient_import.dom_id}"' in html
    assert '<progress class="progress" value="42" max="100"' in html
    assert '<dd data-import-count="read">12,345</dd>' in html
    assert "Cancel import" in html
    assert "<turbo-stream-source" in html
    assert "style=" not in html
    assert "Checking for duplicates" not in html


def test_progress_page_says_when_rows_are_being_added(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    recipient_import = make_import(
        make_campaign(), import_dir, status="running", file_size=1000, bytes_read=1000
    )

    html = client.get(recipient_import.get_absolute_url()).content.decode()

    assert '<progress class="progress" value="100" max="100"' in html
    assert "Checking for duplicates and adding the recipients" in html


def test_report_shown_on_page_and_campaign(
    client: Client, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    campaign = make_campaign()
    recipient_import = make_import(
        campaign, import_dir, status="completed", rows_read=25, rows_added=2, rows_invalid=23
    )
    for line in range(2, 25):
        ImportIssue.objects.create(
            recipient_import=recipient_import,
            line=line,
            kind="invalid",
            email=f"bad{line}",
            reason="Email: not valid.",
        )

    for page in (recipient_import.get_absolute_url(), campaign.get_absolute_url()):
        html = client.get(page).content.decode()
        assert html.count("data-report-line=") == 20, page
        assert "The first 20 of 23 rows that were not added" in html
        assert url("report", recipient_import) in html


# Report download


@pytest.mark.django_db(transaction=True)
def test_report_csv(
    async_client: AsyncClient,
    make_campaign: MakeCampaign,
    import_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Committed rows, because the view's reads close the connection after
    # them, as they do under uvicorn.
    recipient_import = make_import(make_campaign(), import_dir, status="completed")
    rows = [
        (9, "invalid", "=HYPERLINK(1)", "a@b", "+1 202", "Email: bad."),
        (3, "duplicate", "Ada", "ada@example.com", "", "Duplicate: line 2."),
        (3, "invalid", "@sum", "-x", "\tz", 'Say "hi", then go'),
    ]
    for line, kind, name, email, phone, reason in rows:
        ImportIssue.objects.create(
            recipient_import=recipient_import,
            line=line,
            kind=kind,
            name=name,
            email=email,
            phone=phone,
            reason=reason,
        )
    # Pages of two rows, so the keyset moves on within one line.
    monkeypatch.setattr(report_csv, "PAGE_ROWS", 2)

    async def download() -> tuple[Any, str]:
        response = await async_client.get(url("report", recipient_import))
        assert isinstance(response, StreamingHttpResponse)
        body = b"".join([chunk async for chunk in response])
        return response, body.decode()

    # In a thread of its own: after the browser tests, sync Playwright keeps
    # an event loop running in the main thread, where async_to_sync raises.
    with ThreadPoolExecutor(max_workers=1) as pool:
        response, body = pool.submit(async_to_sync(download)).result()

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="people-report.csv"'
    assert body.split("\r\n") == [
        "\ufeffline,kind,name,email,phone,reason",
        "3,duplicate,Ada,ada@example.com,,Duplicate: line 2.",
        '3,invalid,\'@sum,\'-x,\'\tz,"Say ""hi"", then go"',
        "9,invalid,'=HYPERLINK(1),a@b,'+1 202,Email: bad.",
        "",
    ]


@pytest.mark.django_db(transaction=True)
def test_report_wrong_campaign(
    async_client: AsyncClient, make_campaign: MakeCampaign, import_dir: Path
) -> None:
    recipient_import = make_import(make_campaign(), import_dir, status="completed")
    other = make_campaign(name="Other")

    async def download() -> Any:
        return await async_client.get(
            reverse("imports:report", args=[other.pk, recipient_import.pk])
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        response = pool.submit(async_to_sync(download)).result()

    assert response.status_code == 404
