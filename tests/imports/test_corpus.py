"""Every corpus file imported end to end: the recipients it adds and the rows it reports.

Each readable file goes through `import_recipients`, which detects the format,
guesses the columns and runs the import job, so these cases cover the path a
user takes with the guessed mapping. Files that are not CSV must end with a
clear error and leave nothing behind. tests/imports/files/rows/ contains files
about the values inside rows: bad emails, damaged phone numbers, duplicates
and invisible characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Campaign, Recipient
from imports.models import RecipientImport
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db

FILES = Path(__file__).parent / "files"

# A recipient as stored: name, email, phone.
Row = tuple[str, str, str]


@dataclass(frozen=True)
class Outcome:
    added: list[Row]
    # Reported rows: line, kind and a fragment of the reason.
    reported: list[tuple[int, str, str]] = field(default_factory=list)
    region: str = "US"


ADA = ("Ada Lovelace", "ada@example.com", "")
GRACE = ("Grace Hopper", "grace@example.com", "")
# libphonenumber treats the UK range +44 7700 900xxx, set aside for drama, as
# possible but not valid, so these exports' rows are rejected whole.
DRAMA_NUMBER = (2, "invalid", "“+44 7700 900123” is not a valid phone number")

OUTCOMES: dict[str, Outcome] = {
    "blank_lines.csv": Outcome([ADA, GRACE]),
    "comma.csv": Outcome(
        [
            ("Ada Lovelace", "ada@example.com", "+442079460958"),
            GRACE,
            ("Alan Turing", "", "+441614960000"),
        ]
    ),
    "cr_only.csv": Outcome([ADA, GRACE]),
    "crlf_quoted.csv": Outcome(
        [
            ("Lovelace, Ada", "ada@example.com", ""),
            ('Grace "Amazing Grace" Hopper', "grace@example.com", ""),
            ("Alan Turing", "alan@example.com", ""),
        ]
    ),
    "extra_and_short_rows.csv": Outcome(
        [ADA, ("", "grace@example.com", ""), ("Alan Turing", "alan@example.com", "")]
    ),
    "google_contacts.csv": Outcome([], [DRAMA_NUMBER]),
    "header_only.csv": Outcome([]),
    "hubspot_export.csv": Outcome([], [DRAMA_NUMBER]),
    "invisible_header.csv": Outcome([("Ada Lovelace", "ada@example.com", "+442079460958")]),
    "latin1.csv": Outcome(
        [("José Müller", "jose@example.com", ""), ("Björn", "bjorn@example.com", "")]
    ),
    "mailchimp_export.csv": Outcome([], [DRAMA_NUMBER]),
    "no_header.csv": Outcome(
        [
            ("Ada Lovelace", "ada@example.com", "+442079460958"),
            ("Grace Hopper", "grace@example.com", "+12025550101"),
            ("Alan Turing", "alan@example.com", ""),
        ]
    ),
    "nul_in_text.csv": Outcome([ADA, GRACE]),
    "outlook_contacts.csv": Outcome([], [DRAMA_NUMBER]),
    "semicolon_decimal_commas.csv": Outcome(
        [("Ada Lovelace", "ada@example.com", "+442079460958"), GRACE]
    ),
    "single_column_emails.csv": Outcome(
        [("", "ada@example.com", ""), ("", "grace@example.com", ""), ("", "alan@example.com", "")]
    ),
    "tab_commas_in_values.tsv": Outcome(
        [("Lovelace, Ada", "ada@example.com", ""), ("Hopper, Grace", "grace@example.com", "")]
    ),
    "unknown_titles.csv": Outcome([("", "ada@example.com", ""), ("", "grace@example.com", "")]),
    "utf16be_bom.csv": Outcome([("Zoë Brontë", "zoe@example.com", "")]),
    "utf16be_no_bom.csv": Outcome([("", "ada@example.com", ""), ("", "grace@example.com", "")]),
    "utf16le_bom_tab.txt": Outcome(
        [
            ("Zoë Brontë", "zoe@example.com", "+33123456789"),
            ("李小龙", "lee@example.com", "+85223456789"),
        ]
    ),
    "utf16le_no_bom.csv": Outcome(
        [("José Álvarez", "", "+34912345678"), ("Ada Lovelace", "", "+442079460958")]
    ),
    "utf8_bom_semicolon.csv": Outcome(
        [
            ("Zoë Brontë", "zoe@example.com", "+33123456789"),
            ("Søren Kierkegaard", "soren@example.com", ""),
        ]
    ),
    "windows1252.csv": Outcome([("“Chloé” Dubois", "chloe@example.com", "")]),
    "rows/bad_emails.csv": Outcome(
        [("Valid", "ada@example.com", ""), ("Unicode domain", "juergen@bücher.de", "")],
        [
            (3, "invalid", "must have an @-sign"),
            (4, "invalid", "invalid characters: '@'"),
            (5, "invalid", "It should have a period"),
            (6, "invalid", "invalid characters before the @-sign"),
            (7, "invalid", "cannot end with a period"),
            (8, "invalid", "special-use or reserved name"),
            (10, "invalid", "the characters before the @ must be ASCII; “ë” is not"),
        ],
    ),
    "rows/damaged_phones.csv": Outcome(
        [
            ("National", "", "+447911123456"),
            ("International", "", "+442071234567"),
            ("Lost plus", "", "+447912123456"),
            ("Lost zero of the same number", "", "+447912123457"),
        ],
        [
            (6, "invalid", "scientific notation"),
            (7, "invalid", "stored as a decimal number"),
            (8, "invalid", "spreadsheet error"),
            (9, "invalid", "column too narrow"),
            (10, "invalid", "is not a phone number"),
            (11, "invalid", "has an extension"),
            (12, "invalid", "read as GB numbers"),
        ],
        region="GB",
    ),
    "rows/italian_numbers.csv": Outcome(
        [("Rome landline", "", "+390612345678"), ("Mobile", "", "+393123456789")],
        [(4, "invalid", "removed the leading 0")],
        region="IT",
    ),
    "rows/duplicates.csv": Outcome(
        [
            ("Ada", "ada@example.com", "+12025550101"),
            ("Alan", "alan@example.com", ""),
        ],
        [
            (3, "duplicate", "line 2 has the same email address"),
            (4, "duplicate", "line 2 has the same phone number"),
            (6, "duplicate", "a recipient of the campaign has this email address"),
            (7, "duplicate", "a recipient of the campaign has this phone number"),
            (8, "duplicate", "line 5 has the same email address"),
        ],
    ),
    "rows/invisible_characters.csv": Outcome(
        [
            ("Ada Lovelace", "ada@example.com", "+12025550102"),
            ("Grace Hopper", "grace@example.com", ""),
            ("Alan Turing", "alan@example.com", "+12025550103"),
        ]
    ),
}

# Files that are not CSV text, or hold no record: the import must not start.
UNREADABLE = {
    "animation.gif": "GIF image",
    "archive.zip": "ZIP archive",
    "compressed.csv.gz": "compressed (gzip) file",
    "document.docx": "Word document",
    "document.pdf": "PDF document",
    "empty.csv": "The file is empty",
    "image.png": "PNG image",
    "legacy.xls": "Excel 97-2003 workbook",
    "only_blank_lines.csv": "every line is blank",
    "page.html": "web page",
    "photo.jpg": "JPEG image",
    "random.bin": "binary data",
    "recipients.json": "JSON file",
    "spreadsheet.ods": "OpenDocument spreadsheet",
    "utf32_bom.csv": "UTF-32",
    "workbook.xlsx": "Excel workbook",
}


def corpus_files() -> set[str]:
    return {
        str(path.relative_to(FILES))
        for path in FILES.rglob("*")
        if path.is_file() and path.suffix != ".py" and not path.name.startswith(".")
    }


def test_corpus_outcomes_cover_every_file() -> None:
    assert corpus_files() == set(OUTCOMES) | set(UNREADABLE)


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_corpus_file_import(name: str) -> None:
    outcome = OUTCOMES[name]
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Corpus")
    if name == "rows/duplicates.csv":
        Recipient.objects.create(campaign=campaign, email="Existing@example.com")
        Recipient.objects.create(campaign=campaign, phone_number="+12025550199")
    existing = list(campaign.recipients.values_list("pk", flat=True))

    call_command(
        "import_recipients",
        str(campaign.pk),
        str(FILES / name),
        "--region",
        outcome.region,
        stdout=StringIO(),
    )

    recipient_import = RecipientImport.objects.get(campaign=campaign)
    assert recipient_import.status == RecipientImport.Status.COMPLETED
    added = campaign.recipients.exclude(pk__in=existing).order_by("id")
    assert list(added.values_list("name", "email", "phone_number")) == outcome.added
    assert recipient_import.rows_added == len(outcome.added)
    reported = list(recipient_import.issues.order_by("line").values_list("line", "kind", "reason"))
    assert [(line, kind) for line, kind, _reason in reported] == [
        (line, kind) for line, kind, _fragment in outcome.reported
    ]
    for (_line, _kind, reason), (_l, _k, fragment) in zip(reported, outcome.reported, strict=True):
        assert fragment in reason
    assert recipient_import.rows_read == len(outcome.added) + recipient_import.rows_reported


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_corpus_file(name: str, import_files_dir: Path) -> None:
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Corpus")

    with pytest.raises(CommandError, match=re.escape(UNREADABLE[name])):
        call_command("import_recipients", str(campaign.pk), str(FILES / name), stdout=StringIO())

    assert not RecipientImport.objects.exists()
    assert list(import_files_dir.iterdir()) == []


def test_example_file_matches_readme() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "recipients.csv"
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Example")

    call_command("import_recipients", str(campaign.pk), str(example), stdout=StringIO())

    recipient_import = RecipientImport.objects.get(campaign=campaign)
    assert list(campaign.recipients.values_list("name", flat=True)) == [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Donald Knuth",
    ]
    assert list(recipient_import.issues.values_list("line", "kind")) == [
        (5, "duplicate"),
        (6, "invalid"),
        (7, "invalid"),
    ]
