"""Fixtures for the import tests: uploads in a folder of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from imports.models import RecipientImport

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
