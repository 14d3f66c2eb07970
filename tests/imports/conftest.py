"""Fixtures of the import tests: private upload folders, queued imports and upload helpers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from campaigns.models import Campaign
from imports.models import RecipientImport

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

FILES = Path(__file__).parent / "files"

# Columns of the files that `queued_import` writes by default: name, email, phone.
DEFAULT_MAPPING = {"name_column": 0, "email_column": 1, "phone_column": 2}


@pytest.fixture(autouse=True)
def import_files_dir(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A folder apart from tmp_path, which tests fill with files of their own.
    folder = tmp_path_factory.mktemp("imports")
    settings.IMPORT_FILES_DIR = folder
    return folder


@pytest.fixture
def queued_import(import_files_dir: Path) -> Callable[..., RecipientImport]:
    """Write `content` as an upload of `campaign` and queue its import.

    `content` is text (written in `encoding`) or bytes; the mapping defaults
    to name, email and phone in the first three columns, after a header row.
    """

    def make(
        campaign: Campaign,
        content: str | bytes,
        *,
        encoding: str = "utf-8",
        delimiter: str = ",",
        has_header: bool = True,
        region: str = "US",
        status: str = RecipientImport.Status.QUEUED,
        **mapping: int | None,
    ) -> RecipientImport:
        stored_name = f"{uuid.uuid4().hex}.csv"
        data = content if isinstance(content, bytes) else content.encode(encoding)
        (import_files_dir / stored_name).write_bytes(data)
        return RecipientImport.objects.create(
            campaign=campaign,
            status=status,
            queued_at=timezone.now(),
            file_name="recipients.csv",
            stored_name=stored_name,
            file_size=len(data),
            encoding=encoding,
            delimiter=delimiter,
            has_header=has_header,
            phone_region=region,
            **(mapping or DEFAULT_MAPPING),
        )

    return make


@pytest.fixture
def import_dir(settings: Settings, tmp_path: Path) -> Path:
    """IMPORT_FILES_DIR for this test; not created, as on a fresh install."""
    folder = tmp_path / "imports"
    settings.IMPORT_FILES_DIR = folder
    return folder


def stored_files(folder: Path) -> list[str]:
    """Names of the files in the upload folder (none when it does not exist)."""
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def upload_file(client: Client, campaign: Campaign, name: str, content: bytes) -> TestResponse:
    """Post `content` as the file `name` through the campaign's import upload page."""
    url = reverse("imports:new", args=[campaign.pk])
    return client.post(url, {"file": SimpleUploadedFile(name, content, "text/csv")})


def make_import(campaign: Campaign, folder: Path, **fields: object) -> RecipientImport:
    """Create an import of a small stored file (comma.csv's layout), waiting for its mapping."""
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = f"test-{campaign.pk}-{RecipientImport.objects.count()}.csv"
    content = b"Name,Email,Phone\nAda,ada@example.com,+442079460958\n"
    (folder / stored_name).write_bytes(content)
    values: dict[str, object] = {
        "campaign": campaign,
        "file_name": "people.csv",
        "stored_name": stored_name,
        "file_size": len(content),
        "encoding": "utf-8",
        "delimiter": ",",
        "column_titles": ["Name", "Email", "Phone"],
        "sample_rows": [["Ada", "ada@example.com", "+442079460958"]],
        "name_column": 0,
        "email_column": 1,
        "phone_column": 2,
        "phone_region": "GB",
    }
    values.update(fields)
    return RecipientImport.objects.create(**values)
