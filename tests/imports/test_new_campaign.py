"""The new-campaign page with a CSV file: alone, next to typed rows, or unreadable."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from imports.models import RecipientImport
from tests.campaigns.campaign_form import form_data
from tests.imports.conftest import FILES, stored_files

pytestmark = pytest.mark.django_db

NEW_URL = reverse("campaigns:create")
CSV = b"Name,Email\nAda Lovelace,ada@example.com\n"


def with_file(data: dict[str, str], name: str, content: bytes) -> dict[str, object]:
    return {**data, "file": SimpleUploadedFile(name, content, "text/csv")}


def test_new_page_has_file_input(client: Client) -> None:
    html = client.get(NEW_URL).content.decode()

    assert 'enctype="multipart/form-data"' in html
    assert 'type="file" name="file"' in html


def test_create_from_file_only(client: Client, import_dir: Path) -> None:
    response = client.post(NEW_URL, with_file(form_data("Spring", [{}]), "people.csv", CSV))

    campaign = Campaign.objects.get()
    recipient_import = RecipientImport.objects.get()
    assert response.status_code == 303
    assert response["Location"] == recipient_import.get_absolute_url()
    assert campaign.status == Campaign.Status.PENDING
    assert not campaign.recipients.exists()
    assert recipient_import.campaign == campaign
    assert recipient_import.status == RecipientImport.Status.MAPPING
    assert recipient_import.mapping() == {"name": 0, "email": 1}
    assert stored_files(import_dir) == [recipient_import.stored_name]


def test_create_from_rows_and_file(client: Client, import_dir: Path) -> None:
    rows = [{"name": "Grace", "email": "grace@example.com"}]

    response = client.post(NEW_URL, with_file(form_data("Spring", rows), "people.csv", CSV))

    campaign = Campaign.objects.get()
    recipient_import = RecipientImport.objects.get()
    assert response.status_code == 303
    assert response["Location"] == recipient_import.get_absolute_url()
    assert list(campaign.recipients.values_list("email", flat=True)) == ["grace@example.com"]
    assert recipient_import.campaign == campaign


@pytest.mark.parametrize(
    ("name", "rows", "error"),
    [
        ("Spring", [{}], "This is a PNG image, not a CSV file."),
        ("", [{}], "Enter a campaign name."),
        ("Spring", [{"email": "not-an-address"}], "field-error"),
    ],
)
def test_create_with_errors_keeps_nothing(
    client: Client, import_dir: Path, name: str, rows: list[dict[str, str]], error: str
) -> None:
    content = (FILES / "image.png").read_bytes() if "PNG" in error else CSV
    data = with_file(form_data(name, rows), "upload.csv", content)

    response = client.post(NEW_URL, data)

    assert response.status_code == 422
    assert error in response.content.decode()
    assert not Campaign.objects.exists()
    assert not RecipientImport.objects.exists()
    assert stored_files(import_dir) == []


def test_create_without_rows_or_file_rejected(client: Client, import_dir: Path) -> None:
    response = client.post(NEW_URL, form_data("Spring", [{}]))

    assert response.status_code == 422
    assert "Add at least one recipient" in response.content.decode()
    assert not Campaign.objects.exists()
