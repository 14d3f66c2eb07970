"""The import_recipients management command."""

from __future__ import annotations

import csv
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Campaign, Recipient
from imports.models import RecipientImport
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db


def run(*args: Any) -> str:
    output = StringIO()
    call_command("import_recipients", *[str(arg) for arg in args], stdout=output)
    return output.getvalue()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(
        "Full name;E-mail Address;Mobile\n"
        "Ada Lovelace;ada@example.com;+44 7911 123456\n"
        "Grace Hopper;grace@@example.com;\n"
        "Ada again;ADA@example.com;\n",
        encoding="utf-8",
    )
    return path


def test_command_imports_and_writes_report(source: Path, tmp_path: Path) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")
    report = tmp_path / "report.csv"

    output = run(campaign.pk, source, "--report", report)

    assert "name: column 1 “Full name”" in output
    assert "email: column 2 “E-mail Address”" in output
    assert "phone: column 3 “Mobile”" in output
    assert "Added 1 of 3 rows; 1 duplicate skipped, 1 invalid." in output
    assert "line 3: Email:" in output
    assert list(campaign.recipients.values_list("name", "email", "phone_number")) == [
        ("Ada Lovelace", "ada@example.com", "+447911123456")
    ]
    # The report starts with a byte-order mark, for spreadsheets.
    assert report.read_bytes().startswith(b"\xef\xbb\xbf")
    with report.open(encoding="utf-8-sig", newline="") as opened:
        rows = list(csv.reader(opened))
    assert rows[0] == ["line", "kind", "name", "email", "phone", "reason"]
    assert [(row[0], row[1]) for row in rows[1:]] == [("3", "invalid"), ("4", "duplicate")]


def test_command_columns_by_title_or_number(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("who,contact\nAda,ada@example.com\n", encoding="utf-8")
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")

    run(campaign.pk, path, "--name", "WHO", "--email", "2")

    assert list(campaign.recipients.values_list("name", "email")) == [("Ada", "ada@example.com")]


def test_command_needs_contact_column(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("who,notes\nAda,likes engines\n", encoding="utf-8")
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")

    with pytest.raises(CommandError, match="1 “who”, 2 “notes”"):
        run(campaign.pk, path)

    assert not RecipientImport.objects.exists()


def test_command_rejects_dispatched_campaign(source: Path) -> None:
    campaign = Campaign.objects.create(
        workspace=operator_workspace(), name="Launch", status=Campaign.Status.COMPLETED
    )

    with pytest.raises(CommandError, match="only be imported into a pending campaign"):
        run(campaign.pk, source)


def test_command_rejects_bad_arguments(source: Path) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")

    with pytest.raises(CommandError, match="No campaign has the id"):
        run(campaign.pk + 1000, source)
    with pytest.raises(CommandError, match="Cannot read"):
        run(campaign.pk, source.with_name("missing.csv"))
    with pytest.raises(CommandError, match="not a region code"):
        run(campaign.pk, source, "--region", "XX")


def test_command_rejects_non_csv_file(tmp_path: Path, import_files_dir: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")

    with pytest.raises(CommandError):
        run(campaign.pk, path)

    assert list(import_files_dir.iterdir()) == []
    assert not Recipient.objects.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--email", "9"], "There is no column 9: the file has columns 1 to 3"),
        (["--email", "2", "--phone", "2"], "--phone: Column B already fills Email"),
        (["--name", "1", "--first-name", "2"], "either a Name column or First name"),
    ],
)
def test_command_rejects_invalid_mapping(source: Path, options: list[str], message: str) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")

    with pytest.raises(CommandError, match=message):
        run(campaign.pk, source, *options)

    assert not RecipientImport.objects.exists()
    assert not campaign.recipients.exists()


def test_command_rejects_oversized_file(source: Path, settings: Any) -> None:
    settings.IMPORT_MAX_FILE_MEGABYTES = 1
    source.write_bytes(b"email\n" + b"a@example.com\n" * 100_000)
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Launch")

    with pytest.raises(
        CommandError,
        match=re.escape("The file is 1.3 MB; the largest file an import takes is 1 MB"),
    ):
        run(campaign.pk, source)
