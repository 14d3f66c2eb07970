"""Reading recipient files: format detection, streamed records and the column guess.

Every file under tests/imports/files/ appears in READABLE or UNREADABLE below. Files
larger than the detection sample are generated into tmp_path by the tests that need them.
"""

from __future__ import annotations

import csv
import runpy
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest

from imports.reader import (
    SAMPLE_BYTES,
    Field,
    FileFormat,
    RecordReader,
    UnreadableFile,
    detect_format,
    guess_mapping,
    iter_records,
    preview,
)

FILES = Path(__file__).parent / "files"

NAME = Field.NAME
FIRST = Field.FIRST_NAME
LAST = Field.LAST_NAME
EMAIL = Field.EMAIL
PHONE = Field.PHONE


@dataclass(frozen=True)
class Expected:
    encoding: str
    delimiter: str
    header: list[str]
    has_header: bool
    mapping: dict[Field, int]
    column_count: int
    records: list[tuple[int, list[str]]]


READABLE: dict[str, Expected] = {
    "comma.csv": Expected(
        "utf-8",
        ",",
        ["Name", "Email", "Phone"],
        True,
        {NAME: 0, EMAIL: 1, PHONE: 2},
        3,
        [
            (1, ["Name", "Email", "Phone"]),
            (2, ["Ada Lovelace", "ada@example.com", "+44 20 7946 0958"]),
            (3, ["Grace Hopper", "grace@example.com", ""]),
            (4, ["Alan Turing", "", "+44 161 496 0000"]),
        ],
    ),
    "semicolon_decimal_commas.csv": Expected(
        "utf-8",
        ";",
        ["Full name", "E-mail", "Mobile", "Balance"],
        True,
        {NAME: 0, EMAIL: 1, PHONE: 2},
        4,
        [
            (1, ["Full name", "E-mail", "Mobile", "Balance"]),
            (2, ["Ada Lovelace", "ada@example.com", "+44 20 7946 0958", "1,50"]),
            (3, ["Grace Hopper", "grace@example.com", "", "2,75"]),
        ],
    ),
    "tab_commas_in_values.tsv": Expected(
        "utf-8",
        "\t",
        ["Name", "Email"],
        True,
        {NAME: 0, EMAIL: 1},
        2,
        [
            (1, ["Name", "Email"]),
            (2, ["Lovelace, Ada", "ada@example.com"]),
            (3, ["Hopper, Grace", "grace@example.com"]),
        ],
    ),
    "utf8_bom_semicolon.csv": Expected(
        "utf-8-sig",
        ";",
        ["Full Name", "E-Mail", "Phone Number"],
        True,
        {NAME: 0, EMAIL: 1, PHONE: 2},
        3,
        [
            (1, ["Full Name", "E-Mail", "Phone Number"]),
            (2, ["Zoë Brontë", "zoe@example.com", "+33 1 23 45 67 89"]),
            (3, ["Søren Kierkegaard", "soren@example.com", ""]),
        ],
    ),
    "utf16le_bom_tab.txt": Expected(
        "utf-16",
        "\t",
        ["Name", "Email", "Mobile"],
        True,
        {NAME: 0, EMAIL: 1, PHONE: 2},
        3,
        [
            (1, ["Name", "Email", "Mobile"]),
            (2, ["Zoë Brontë", "zoe@example.com", "+33 1 23 45 67 89"]),
            (3, ["李小龙", "lee@example.com", "+852 2345 6789"]),
        ],
    ),
    "utf16be_bom.csv": Expected(
        "utf-16",
        ",",
        ["name", "email"],
        True,
        {NAME: 0, EMAIL: 1},
        2,
        [(1, ["name", "email"]), (2, ["Zoë Brontë", "zoe@example.com"])],
    ),
    "utf16le_no_bom.csv": Expected(
        "utf-16-le",
        ",",
        ["Name", "Phone"],
        True,
        {NAME: 0, PHONE: 1},
        2,
        [
            (1, ["Name", "Phone"]),
            (2, ["José Álvarez", "+34 912 345 678"]),
            (3, ["Ada Lovelace", "+44 20 7946 0958"]),
        ],
    ),
    "utf16be_no_bom.csv": Expected(
        "utf-16-be",
        ",",
        ["Email"],
        True,
        {EMAIL: 0},
        1,
        [(1, ["Email"]), (2, ["ada@example.com"]), (3, ["grace@example.com"])],
    ),
    "windows1252.csv": Expected(
        "cp1252",
        ",",
        ["Name", "Email", "Note"],
        True,
        {NAME: 0, EMAIL: 1},
        3,
        [
            (1, ["Name", "Email", "Note"]),
            (2, ["“Chloé” Dubois", "chloe@example.com", "Paid €20"]),
        ],
    ),
    "latin1.csv": Expected(
        "latin-1",
        ",",
        ["Name", "Email"],
        True,
        {NAME: 0, EMAIL: 1},
        2,
        [
            (1, ["Name", "Email"]),
            (2, ["José Müller", "jose@example.com"]),
            (3, ["Björn\x8d", "bjorn@example.com"]),
        ],
    ),
    "crlf_quoted.csv": Expected(
        "utf-8",
        ",",
        ["Name", "Email", "Notes"],
        True,
        {NAME: 0, EMAIL: 1},
        3,
        [
            (1, ["Name", "Email", "Notes"]),
            # The quoted line break makes this record span lines 2 and 3.
            (2, ["Lovelace, Ada", "ada@example.com", "first line\r\nsecond line"]),
            (4, ['Grace "Amazing Grace" Hopper', "grace@example.com", ""]),
            (5, ["Alan Turing", "alan@example.com", 'said "hello, world"']),
        ],
    ),
    "cr_only.csv": Expected(
        "utf-8",
        ",",
        ["Name", "Email"],
        True,
        {NAME: 0, EMAIL: 1},
        2,
        [
            (1, ["Name", "Email"]),
            (2, ["Ada Lovelace", "ada@example.com"]),
            (3, ["Grace\rHopper", "grace@example.com"]),
        ],
    ),
    "blank_lines.csv": Expected(
        "utf-8",
        ",",
        ["Name", "Email"],
        True,
        {NAME: 0, EMAIL: 1},
        2,
        [
            (2, ["Name", "Email"]),
            (4, ["Ada Lovelace", "ada@example.com"]),
            (8, ["Grace Hopper", "grace@example.com"]),
        ],
    ),
    "extra_and_short_rows.csv": Expected(
        "utf-8",
        ",",
        ["Email", "Name"],
        True,
        {EMAIL: 0, NAME: 1},
        4,
        [
            (1, ["Email", "Name"]),
            (2, ["ada@example.com", "Ada Lovelace", "VIP", "2024"]),
            (3, ["grace@example.com"]),
            (4, ["alan@example.com", "Alan Turing"]),
        ],
    ),
    "single_column_emails.csv": Expected(
        "utf-8",
        ",",
        ["ada@example.com"],
        False,
        {EMAIL: 0},
        1,
        [(1, ["ada@example.com"]), (2, ["grace@example.com"]), (3, ["alan@example.com"])],
    ),
    "no_header.csv": Expected(
        "utf-8",
        ",",
        ["+44 20 7946 0958", "Ada Lovelace", "ada@example.com"],
        False,
        {PHONE: 0, NAME: 1, EMAIL: 2},
        3,
        [
            (1, ["+44 20 7946 0958", "Ada Lovelace", "ada@example.com"]),
            (2, ["+1 (202) 555-0101", "Grace Hopper", "grace@example.com"]),
            (3, ["", "Alan Turing", "alan@example.com"]),
        ],
    ),
    "header_only.csv": Expected(
        "utf-8",
        ",",
        ["First name", "Last name", "Email", "Phone"],
        True,
        {FIRST: 0, LAST: 1, EMAIL: 2, PHONE: 3},
        4,
        [(1, ["First name", "Last name", "Email", "Phone"])],
    ),
    "unknown_titles.csv": Expected(
        "utf-8",
        ",",
        ["Client", "Contact"],
        True,
        # No title matches, so the values show the email column. A name column is not
        # guessed under titles that name no field.
        {EMAIL: 1},
        2,
        [
            (1, ["Client", "Contact"]),
            (2, ["Ada Lovelace", "ada@example.com"]),
            (3, ["Grace Hopper", "grace@example.com"]),
        ],
    ),
    "invisible_header.csv": Expected(
        "utf-8-sig",
        ",",
        ["E_MAIL", "Phone_Number", "Full-Name"],
        True,
        {EMAIL: 0, PHONE: 1, NAME: 2},
        3,
        [
            (1, ["\ufeffE_MAIL", "\u200bPhone_Number", "\u00a0Full-Name\u00a0"]),
            (2, ["ada@example.com", "+44 20 7946 0958", "Ada Lovelace"]),
        ],
    ),
    "nul_in_text.csv": Expected(
        "utf-8",
        ",",
        ["Name", "Email"],
        True,
        {NAME: 0, EMAIL: 1},
        2,
        [
            (1, ["Name", "Email"]),
            # PostgreSQL text cannot store NUL, so the reader drops it.
            (2, ["Ada Lovelace", "ada@example.com"]),
            (3, ["Grace Hopper", "grace@example.com"]),
        ],
    ),
    "outlook_contacts.csv": Expected(
        "utf-8",
        ",",
        [
            "First Name",
            "Middle Name",
            "Last Name",
            "Business Phone",
            "Home Phone",
            "Mobile Phone",
            "E-mail Address",
            "E-mail 2 Address",
        ],
        True,
        # An exact alias ("Mobile Phone") wins over an earlier fuzzy one ("Business Phone").
        {FIRST: 0, LAST: 2, PHONE: 5, EMAIL: 6},
        8,
        [
            (
                1,
                [
                    "First Name",
                    "Middle Name",
                    "Last Name",
                    "Business Phone",
                    "Home Phone",
                    "Mobile Phone",
                    "E-mail Address",
                    "E-mail 2 Address",
                ],
            ),
            (
                2,
                [
                    "Ada",
                    "",
                    "Lovelace",
                    "+44 20 7946 0000",
                    "",
                    "+44 7700 900123",
                    "ada@example.com",
                    "ada@work.example.com",
                ],
            ),
        ],
    ),
    "google_contacts.csv": Expected(
        "utf-8",
        ",",
        [
            "Name",
            "Given Name",
            "Family Name",
            "E-mail 1 - Type",
            "E-mail 1 - Value",
            "Phone 1 - Type",
            "Phone 1 - Value",
        ],
        True,
        # A full-name column wins over the first and last name columns.
        {NAME: 0, EMAIL: 4, PHONE: 6},
        7,
        [
            (
                1,
                [
                    "Name",
                    "Given Name",
                    "Family Name",
                    "E-mail 1 - Type",
                    "E-mail 1 - Value",
                    "Phone 1 - Type",
                    "Phone 1 - Value",
                ],
            ),
            (
                2,
                [
                    "Ada Lovelace",
                    "Ada",
                    "Lovelace",
                    "* Home",
                    "ada@example.com",
                    "Mobile",
                    "+44 7700 900123",
                ],
            ),
        ],
    ),
    "mailchimp_export.csv": Expected(
        "utf-8",
        ",",
        ["Email Address", "First Name", "Last Name", "Phone Number", "MEMBER_RATING", "OPTIN_TIME"],
        True,
        {EMAIL: 0, FIRST: 1, LAST: 2, PHONE: 3},
        6,
        [
            (
                1,
                [
                    "Email Address",
                    "First Name",
                    "Last Name",
                    "Phone Number",
                    "MEMBER_RATING",
                    "OPTIN_TIME",
                ],
            ),
            (
                2,
                [
                    "ada@example.com",
                    "Ada",
                    "Lovelace",
                    "+44 7700 900123",
                    "2",
                    "2024-01-01 10:00:00",
                ],
            ),
        ],
    ),
    "hubspot_export.csv": Expected(
        "utf-8",
        ",",
        [
            "Record ID",
            "First Name",
            "Last Name",
            "Work Email",
            "Mobile Phone Number",
            "Company Name",
        ],
        True,
        # "Work Email" matches by its ending; "Company Name" is not a recipient's name.
        {FIRST: 1, LAST: 2, EMAIL: 3, PHONE: 4},
        6,
        [
            (
                1,
                [
                    "Record ID",
                    "First Name",
                    "Last Name",
                    "Work Email",
                    "Mobile Phone Number",
                    "Company Name",
                ],
            ),
            (
                2,
                [
                    "101",
                    "Ada",
                    "Lovelace",
                    "ada@example.com",
                    "+44 7700 900123",
                    "Analytical Engines",
                ],
            ),
        ],
    ),
}

# Files that detect_format rejects, with a fragment of each message.
UNREADABLE: dict[str, str] = {
    "empty.csv": "The file is empty.",
    "image.png": "This is a PNG image, not a CSV file.",
    "photo.jpg": "This is a JPEG image, not a CSV file.",
    "animation.gif": "This is a GIF image, not a CSV file.",
    "document.pdf": "This is a PDF document, not a CSV file.",
    "workbook.xlsx": "This is an Excel workbook (.xlsx), not a CSV file. In the spreadsheet, "
    "save it as “CSV UTF-8”",
    "spreadsheet.ods": "This is an OpenDocument spreadsheet (.ods), not a CSV file.",
    "document.docx": "This is a Word document (.docx), not a CSV file.",
    "archive.zip": "This is a ZIP archive, not a CSV file.",
    "legacy.xls": "This is an Excel 97-2003 workbook (.xls)",
    "compressed.csv.gz": "This is a compressed (gzip) file",
    "utf32_bom.csv": "This file is UTF-32 text, which is not supported.",
    "random.bin": "This file contains binary data, not text.",
    "page.html": "This is a web page or an XML file, not a CSV file.",
    "recipients.json": "This is a JSON file, not a CSV file.",
}

# Files that detect_format accepts but that contain no record.
NO_RECORDS = ["only_blank_lines.csv"]


def test_corpus_lists_every_file() -> None:
    on_disk = {
        path.name
        for path in FILES.iterdir()
        if path.is_file() and path.suffix != ".py" and not path.name.startswith(".")
    }
    listed = set(READABLE) | set(UNREADABLE) | set(NO_RECORDS)
    assert on_disk == listed


def test_generated_files_match_script(tmp_path: Path) -> None:
    script = runpy.run_path(str(FILES / "make_corpus.py"))
    script["write_corpus"](tmp_path)
    generated = sorted(path.name for path in tmp_path.iterdir())
    assert generated
    for name in generated:
        assert (FILES / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.parametrize("name", sorted(READABLE))
def test_detect_format(name: str) -> None:
    expected = READABLE[name]
    fmt = detect_format(FILES / name)
    assert fmt.encoding == expected.encoding
    assert fmt.delimiter == expected.delimiter


@pytest.mark.parametrize("name", sorted(READABLE))
def test_iter_records(name: str) -> None:
    expected = READABLE[name]
    fmt = FileFormat(expected.encoding, expected.delimiter)
    records = [(record.line, record.cells) for record in iter_records(FILES / name, fmt)]
    assert records == expected.records


@pytest.mark.parametrize("name", sorted(READABLE))
def test_preview(name: str) -> None:
    expected = READABLE[name]
    fmt = FileFormat(expected.encoding, expected.delimiter)
    result = preview(FILES / name, fmt)
    assert result.header == expected.header
    assert result.has_header is expected.has_header
    assert result.mapping == expected.mapping
    assert result.column_count == expected.column_count
    rows = [cells for _, cells in expected.records]
    samples = rows[1:6] if expected.has_header else rows[:5]
    assert result.samples == samples


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_detect_format_rejects(name: str) -> None:
    with pytest.raises(UnreadableFile) as raised:
        detect_format(FILES / name)
    assert UNREADABLE[name] in str(raised.value)


def test_preview_without_records() -> None:
    path = FILES / "only_blank_lines.csv"
    fmt = detect_format(path)
    assert list(iter_records(path, fmt)) == []
    with pytest.raises(UnreadableFile, match="every line is blank"):
        preview(path, fmt)


def test_preview_limits_samples(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("email\n" + "".join(f"user{n}@example.com\n" for n in range(20)))
    result = preview(path, FileFormat("utf-8", ","), sample_rows=3)
    assert result.samples == [["user0@example.com"], ["user1@example.com"], ["user2@example.com"]]


def test_format_labels() -> None:
    assert FileFormat("utf-8", ",").encoding_label == "UTF-8"
    assert FileFormat("utf-8-sig", ",").encoding_label == "UTF-8 with byte-order mark"
    assert FileFormat("utf-16-le", ",").encoding_label == "UTF-16"
    assert FileFormat("cp1252", ",").encoding_label == "Windows-1252"
    assert FileFormat("latin-1", ",").encoding_label == "Latin-1"
    assert FileFormat("utf-8", ",").delimiter_label == "comma"
    assert FileFormat("utf-8", ";").delimiter_label == "semicolon"
    assert FileFormat("utf-8", "\t").delimiter_label == "tab"


def test_format_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match="encoding"):
        FileFormat("ascii", ",")
    with pytest.raises(ValueError, match="delimiter"):
        FileFormat("utf-8", "|")


def write_late_byte_file(path: Path, late: bytes) -> None:
    """Write ASCII rows past the detection sample, then one row with `late` in it."""
    rows = b"".join(b"Recipient %d,user%d@example.com\n" % (n, n) for n in range(4000))
    assert len(rows) > SAMPLE_BYTES
    path.write_bytes(b"name,email\n" + rows + b"Caf" + late + b",cafe@example.com\n")


@pytest.mark.parametrize(
    ("late", "encoding", "text"),
    [
        (b"\xe9", "cp1252", "Café"),
        (b"\x8d", "latin-1", "Caf\x8d"),
        (b"\xc3\xa9", "utf-8", "Café"),
    ],
)
def test_encoding_checks_whole_file(tmp_path: Path, late: bytes, encoding: str, text: str) -> None:
    path = tmp_path / "late.csv"
    write_late_byte_file(path, late)
    fmt = detect_format(path)
    assert fmt.encoding == encoding
    last = list(iter_records(path, fmt))[-1]
    assert last.line == 4002
    assert last.cells == [text, "cafe@example.com"]


def test_invalid_utf16_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    # A lone high surrogate (D800) cannot be decoded.
    path.write_bytes("\ufeffname,email\n".encode("utf-16-le") + b"\x00\xd8\n\x00")
    with pytest.raises(UnreadableFile, match="not valid UTF-16"):
        detect_format(path)


def test_invalid_utf8_after_bom_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\xef\xbb\xbfname,email\nCaf\xe9,cafe@example.com\n")
    with pytest.raises(UnreadableFile, match="UTF-8 byte-order mark"):
        detect_format(path)


def test_field_over_limit_names_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    rows = "".join(f"Recipient {n},user{n}@example.com\n" for n in range(10))
    huge = "x" * (csv.field_size_limit() + 1)
    path.write_text(f"name,email\n{rows}Big,{huge}\nLast,last@example.com\n")
    fmt = detect_format(path)
    with pytest.raises(UnreadableFile, match=r"^Line 12 has a field longer than 131,072"):
        list(iter_records(path, fmt))


def test_unclosed_quote_names_line(tmp_path: Path) -> None:
    path = tmp_path / "unclosed.csv"
    rows = "".join(f"Recipient {n},user{n}@example.com\n" for n in range(20_000))
    path.write_text(f'name,email\nAda,ada@example.com\n"Grace,grace@example.com\n{rows}')
    fmt = detect_format(path)
    assert fmt.delimiter == ","
    with pytest.raises(UnreadableFile, match=r"^Line 3 has a field longer") as raised:
        list(iter_records(path, fmt))
    assert "closing quotation mark" in str(raised.value)


def test_wrong_encoding_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name,email\nAda,ada@example.com\nCaf\xe9,cafe@example.com\n")
    with pytest.raises(UnreadableFile, match=r"^The file is not valid UTF-8 text"):
        list(iter_records(path, FileFormat("utf-8", ",")))


@pytest.mark.parametrize(
    ("sample", "delimiter"),
    [
        ("name,email\nAda,ada@example.com\n", ","),
        ("name;email\nAda;ada@example.com\n", ";"),
        ("name\temail\nAda\tada@example.com\n", "\t"),
        # Delimiters inside quoted fields do not count.
        ('"a;b";"c;d"\n"e,f,g,h";"i"\n', ";"),
        ('name,note\nAda,"x;y;z"\nGrace,"p;q;r"\n', ","),
        # One stray semicolon in a single-column file is no delimiter.
        ("email\nada@example.com\ngrace@example.com;\nalan@example.com\n", ","),
        ("email\nada@example.com\n", ","),
    ],
)
def test_delimiter_detection(tmp_path: Path, sample: str, delimiter: str) -> None:
    path = tmp_path / "sample.csv"
    path.write_text(sample)
    assert detect_format(path).delimiter == delimiter


def test_text_with_few_controls_readable(tmp_path: Path) -> None:
    path = tmp_path / "controls.csv"
    rows = "".join(f"Recipient {n},user{n}@example.com\n" for n in range(20))
    path.write_text(f"name,email\n{rows}Bell\x07,bell@example.com\n")
    fmt = detect_format(path)
    assert list(iter_records(path, fmt))[-1].cells == ["Bell\x07", "bell@example.com"]


def test_text_with_many_controls_rejected(tmp_path: Path) -> None:
    path = tmp_path / "controls.csv"
    path.write_bytes(b"name,email\n" + b"\x01\x02\x03\x04,x\n" * 20)
    with pytest.raises(UnreadableFile, match="binary data"):
        detect_format(path)


@pytest.mark.parametrize(
    ("header", "mapping"),
    [
        (["Name", "Email", "Phone"], {NAME: 0, EMAIL: 1, PHONE: 2}),
        (["FULL NAME", "E-MAIL ADDRESS", "MOBILE NUMBER"], {NAME: 0, EMAIL: 1, PHONE: 2}),
        (["full_name", "e_mail", "phone_number"], {NAME: 0, EMAIL: 1, PHONE: 2}),
        (["Contact name", "mail", "Cell phone"], {NAME: 0, EMAIL: 1, PHONE: 2}),
        (["Recipient", "EmailAddress", "Telephone"], {NAME: 0, EMAIL: 1, PHONE: 2}),
        (["Display Name", "Tel.", "msisdn"], {NAME: 0, PHONE: 1}),
        (["Firstname", "Surname", "SMS"], {FIRST: 0, LAST: 1, PHONE: 2}),
        (["Given name", "Family name", "WhatsApp"], {FIRST: 0, LAST: 1, PHONE: 2}),
        (["Forename", "Lastname", "cell"], {FIRST: 0, LAST: 1, PHONE: 2}),
        # Exports in other languages; accents are ignored like letter case.
        (
            ["Prénom", "Nom", "Courriel", "Téléphone portable"],
            {FIRST: 0, LAST: 1, EMAIL: 2, PHONE: 3},
        ),
        (["PRENOM", "NOM", "Adresse e-mail", "Telephone"], {FIRST: 0, LAST: 1, EMAIL: 2, PHONE: 3}),
        (
            ["Vorname", "Nachname", "E-Mail-Adresse", "Handynummer"],
            {FIRST: 0, LAST: 1, EMAIL: 2, PHONE: 3},
        ),
        (
            ["Nombre", "Apellidos", "Correo electrónico", "Móvil"],
            {FIRST: 0, LAST: 1, EMAIL: 2, PHONE: 3},
        ),
        (
            ["Nome", "Cognome", "Indirizzo email", "Cellulare"],
            {FIRST: 0, LAST: 1, EMAIL: 2, PHONE: 3},
        ),
        (["Naam", "E-mailadres", "Telefoonnummer"], {NAME: 0, EMAIL: 1, PHONE: 2}),
        (["first", "last"], {FIRST: 0, LAST: 1}),
        (["\ufeffemail", "\u200bname"], {EMAIL: 0, NAME: 1}),
        ([" Email ", "phone\u00a0"], {EMAIL: 0, PHONE: 1}),
        # The first matching column wins.
        (["Email", "E-mail", "Phone", "Mobile"], {EMAIL: 0, PHONE: 2}),
        # Fuzzy endings fill only the fields that no title names exactly.
        (["Home Phone", "Mobile"], {PHONE: 1}),
        (["Personal email", "Work phone"], {EMAIL: 0, PHONE: 1}),
        (["Company Name", "User Name", "Email opt-in"], {}),
        ([], {}),
    ],
)
def test_guess_mapping(header: list[str], mapping: dict[Field, int]) -> None:
    assert guess_mapping(header) == mapping


@pytest.mark.parametrize(
    ("content", "has_header"),
    [
        # Titles that name no field and no data-like value: a header.
        ("Client,Notes\nAda,VIP\n", True),
        ("Ada Lovelace,ada@example.com\n", False),
        ("Ada Lovelace,+44 20 7946 0958\n", False),
        ("Ada Lovelace,020-7946-0958\n", False),
        # Six digits are too few for a phone number, and an @ without a dot after it is
        # no email address.
        ("Ada Lovelace,123456\n", True),
        ("Ada Lovelace,ada@localhost\n", True),
    ],
)
def test_has_header_guess(tmp_path: Path, content: str, has_header: bool) -> None:
    path = tmp_path / "guess.csv"
    path.write_text(content)
    assert preview(path, FileFormat("utf-8", ",")).has_header is has_header


def make_large_file(path: Path, target_bytes: int) -> None:
    row = "Recipient number {n},recipient.{n}@example.com,+44 7700 {n:06d}\n"
    with path.open("w", encoding="utf-8") as file:
        file.write("name,email,phone\n")
        written = 0
        n = 0
        while written < target_bytes:
            written += file.write(row.format(n=n))
            n += 1


def test_record_reader_streams(tmp_path: Path) -> None:
    path = tmp_path / "large.csv"
    make_large_file(path, 20 * 1024 * 1024)
    fmt = detect_format(path)

    tracemalloc.start()
    try:
        with RecordReader(path, fmt) as reader:
            assert reader.size == path.stat().st_size
            assert reader.bytes_read == 0
            progress = []
            count = 0
            for count, _ in enumerate(reader, start=1):
                if count % 50_000 == 0:
                    progress.append(reader.bytes_read)
            final = reader.bytes_read
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count > 300_000
    assert peak < 4 * 1024 * 1024
    assert progress == sorted(progress)
    assert 0 < progress[0] < reader.size
    assert final == reader.size


def test_detect_format_streams(tmp_path: Path) -> None:
    path = tmp_path / "large.csv"
    make_large_file(path, 20 * 1024 * 1024)

    tracemalloc.start()
    try:
        fmt = detect_format(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert fmt == FileFormat("utf-8", ",")
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize("name", sorted(set(READABLE) | set(UNREADABLE)))
def test_truncated_files_fail_cleanly(tmp_path: Path, name: str) -> None:
    """Every prefix of a corpus file is read or raises UnreadableFile, never another error."""
    content = (FILES / name).read_bytes()
    path = tmp_path / name
    # Every length of a file under 400 bytes, and about 200 lengths of a larger one.
    ends = sorted({*range(0, len(content), max(1, len(content) // 200)), len(content)})
    readable_prefixes = 0
    for end in ends:
        path.write_bytes(content[:end])
        try:
            fmt = detect_format(path)
            list(iter_records(path, fmt))
            preview(path, fmt)
        except UnreadableFile:
            continue
        readable_prefixes += 1

    # The whole file is one of the prefixes.
    if name in READABLE:
        assert readable_prefixes > 0
    else:
        assert readable_prefixes < len(ends)
