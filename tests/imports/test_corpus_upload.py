"""Every file of the reader's corpus through the upload page, and the job for readable ones.

Which rows each file adds and reports is checked elsewhere. Here no step may
return a server error, and an unreadable file must get a form error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from imports.jobs import run_import
from imports.models import RecipientImport
from tests.imports.conftest import FILES, stored_files, upload_file
from tests.imports.test_reader import NO_RECORDS, READABLE, UNREADABLE

pytestmark = pytest.mark.django_db

CORPUS = sorted([*READABLE, *UNREADABLE, *NO_RECORDS])


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_upload(
    client: Client, make_campaign: Callable[..., Campaign], import_dir: Path, name: str
) -> None:
    campaign = make_campaign()

    response = upload_file(client, campaign, name, (FILES / name).read_bytes())

    assert response.status_code < 500
    if name not in READABLE:
        assert response.status_code == 422
        assert 'class="field-error"' in response.content.decode()
        assert not RecipientImport.objects.exists()
        assert stored_files(import_dir) == []
        return

    recipient_import = RecipientImport.objects.get()
    assert response.status_code == 303
    page = client.get(recipient_import.get_absolute_url())
    assert page.status_code == 200
    mapping = recipient_import.mapping()
    data = {field: str(mapping.get(field, "")) for field in ("name", "email", "phone")}
    data.update(
        first_name=str(mapping.get("first_name", "")) if "name" not in mapping else "",
        last_name=str(mapping.get("last_name", "")) if "name" not in mapping else "",
        has_header="on" if recipient_import.has_header else "",
        phone_region="GB",
    )
    confirmed = client.post(
        reverse("imports:confirm", args=[campaign.pk, recipient_import.pk]), data
    )
    assert confirmed.status_code < 500
    recipient_import.refresh_from_db()
    if recipient_import.status != RecipientImport.Status.QUEUED:
        # A guess without an email or a phone column cannot be confirmed as it is.
        assert confirmed.status_code == 422
        return

    run_import(recipient_import.pk)

    recipient_import.refresh_from_db()
    assert recipient_import.status in (
        RecipientImport.Status.COMPLETED,
        RecipientImport.Status.FAILED,
    )
    assert client.get(recipient_import.get_absolute_url()).status_code == 200
    assert client.get(campaign.get_absolute_url()).status_code == 200
