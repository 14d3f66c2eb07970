"""Read recipient files: detect a CSV file's encoding and delimiter, stream its records and
guess which columns hold the recipient fields.

The module imports nothing from Django and never touches the database, so import workers
can load it cheaply. It never reads a whole file into memory: detection reads a sample of
the first SAMPLE_BYTES and then streams the rest in CHUNK_BYTES pieces, and the readers
stream records through the csv module.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self

# Bytes read from the start of a file to recognise its type, delimiter and header.
SAMPLE_BYTES = 64 * 1024
# Bytes decoded at a time when checking that a whole file is valid UTF-8 or UTF-16.
CHUNK_BYTES = 1024 * 1024
# Maximum number of records examined to choose the delimiter.
DELIMITER_SAMPLE_RECORDS = 20
# A sample whose share of control characters (other than tab, line ends, vertical tab,
# form feed and the old end-of-file mark 0x1A) exceeds this counts as binary data. Text
# with a stray NUL stays readable, while at least 10% of random bytes are control characters.
MAX_CONTROL_RATIO = 0.02

# Bytes that Windows-1252 leaves undefined. A non-UTF-8 file containing any of them is
# read as Latin-1, which maps every byte to a character.
CP1252_UNDEFINED_BYTES = (0x81, 0x8D, 0x8F, 0x90, 0x9D)

SAVE_AS_CSV = "In the spreadsheet, save it as “CSV UTF-8” and upload that file."

ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with byte-order mark",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "cp1252": "Windows-1252",
    "latin-1": "Latin-1",
}
DELIMITER_LABELS = {",": "comma", ";": "semicolon", "\t": "tab"}

# Candidate delimiters in the order that breaks a tie: tabs almost never occur inside
# values, and comma is the most common delimiter.
DELIMITER_CANDIDATES = ("\t", ",", ";")

# Control characters that count towards MAX_CONTROL_RATIO.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x19\x1b-\x1f\x7f-\x9f]")

# Tokens of the delimiter scan: a quoted section (unterminated at the end of the
# sample), a run of unquoted text or a line end.
DELIMITER_SCAN_TOKEN = re.compile(r'"[^"]*"?|[^"\r\n]+|\r\n|\r|\n')

# Starts of text files that are not delimited rows.
JSON_START = re.compile(r'(?:\{|\[\s*[\[{"])')

# A value that looks like an email address: an @ with a dot somewhere after it.
EMAIL_LIKE = re.compile(r"@.*\.")
# A value made only of digits, spaces, dashes, parentheses and a leading plus sign.
PHONE_CHARACTERS = re.compile(r"\+?[0-9\s()\-]+")
MIN_PHONE_DIGITS = 7


class UnreadableFile(ValueError):
    """A file that is not a CSV text file this module can read.

    str(exc) is a plain-words message for the user that says what the file is and how to
    make a CSV file from it.
    """


@dataclass(frozen=True)
class FileFormat:
    """The text encoding (a Python codec name) and the delimiter of a CSV file."""

    encoding: str
    delimiter: str

    def __post_init__(self) -> None:
        if self.encoding not in ENCODING_LABELS:
            raise ValueError(f"Unsupported encoding {self.encoding!r}.")
        if self.delimiter not in DELIMITER_LABELS:
            raise ValueError(f"Unsupported delimiter {self.delimiter!r}.")

    @property
    def encoding_label(self) -> str:
        """Name of the encoding for people, such as “UTF-8” or “Windows-1252”."""
        return ENCODING_LABELS[self.encoding]

    @property
    def delimiter_label(self) -> str:
        """Name of the delimiter for people: “comma”, “semicolon” or “tab”."""
        return DELIMITER_LABELS[self.delimiter]


def detect_format(path: str | os.PathLike[str]) -> FileFormat:
    """Detect the encoding and the delimiter of a CSV file.

    Raises UnreadableFile for an empty file, a binary file, or text that isn't delimited
    rows. The whole file is checked as UTF-8, so a file is read as Windows-1252 or Latin-1
    only when it contains an invalid UTF-8 sequence, even one past the sample.
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(SAMPLE_BYTES)
    if not head:
        raise UnreadableFile("The file is empty.")

    _reject_known_binary(path, head)
    encoding = _detect_encoding(path, head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
    _reject_non_text(text)
    delimiter = _detect_delimiter(text, complete=size <= len(head))
    return FileFormat(encoding, delimiter)


def _reject_known_binary(path: str | os.PathLike[str], head: bytes) -> None:
    """Raise UnreadableFile when the file starts with the signature of a known binary type."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        raise UnreadableFile(_image_message("a PNG image"))
    if head.startswith(b"\xff\xd8\xff"):
        raise UnreadableFile(_image_message("a JPEG image"))
    if head.startswith((b"GIF87a", b"GIF89a")):
        raise UnreadableFile(_image_message("a GIF image"))
    if head.startswith(b"%PDF-"):
        raise UnreadableFile(
            "This is a PDF document, not a CSV file. Export the recipient list as a CSV "
            "file from the program that made the PDF, and upload that file."
        )
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise UnreadableFile(
            "This is an Excel 97-2003 workbook (.xls) or another old Microsoft Office "
            f"file, not a CSV file. {SAVE_AS_CSV}"
        )
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise UnreadableFile(_zip_message(path))
    if head.startswith(b"\x1f\x8b"):
        raise UnreadableFile(
            "This is a compressed (gzip) file, not a CSV file. Decompress it and upload "
            "the CSV file inside."
        )
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise UnreadableFile(
            "This file is UTF-32 text, which is not supported. Save it as “CSV UTF-8” "
            "and upload that file."
        )


def _image_message(kind: str) -> str:
    return (
        f"This is {kind}, not a CSV file. Upload the recipient list as a CSV file, "
        "for example by saving it from a spreadsheet as “CSV UTF-8”."
    )


def _zip_message(path: str | os.PathLike[str]) -> str:
    """Name the kind of ZIP-based file (an Office document or a plain archive)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = b""
            if "mimetype" in names:
                with archive.open("mimetype") as member:
                    mimetype = member.read(100)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, zlib.error):
        # A damaged or encrypted archive is still reported as a ZIP archive.
        names = set()
        mimetype = b""

    if any(name.startswith("xl/") for name in names):
        return f"This is an Excel workbook (.xlsx), not a CSV file. {SAVE_AS_CSV}"
    if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
        return f"This is an OpenDocument spreadsheet (.ods), not a CSV file. {SAVE_AS_CSV}"
    if any(name.startswith("Index/") and name.endswith(".iwa") for name in names):
        return (
            "This is an Apple Numbers spreadsheet, not a CSV file. In Numbers, choose "
            "File > Export To > CSV and upload that file."
        )
    if any(name.startswith("word/") for name in names):
        return (
            "This is a Word document (.docx), not a CSV file. Copy the list into a "
            "spreadsheet, save it as “CSV UTF-8” and upload that file."
        )
    if mimetype.startswith(b"application/vnd.oasis.opendocument."):
        return (
            "This is an OpenDocument file, not a CSV file. Copy the list into a "
            "spreadsheet, save it as “CSV UTF-8” and upload that file."
        )
    return (
        "This is a ZIP archive, not a CSV file. Extract the CSV file from it and upload that file."
    )


def _detect_encoding(path: str | os.PathLike[str], head: bytes) -> str:
    """Choose the codec from a byte-order mark, the NUL pattern of UTF-16, or the bytes.

    Every choice except Windows-1252 and Latin-1 is checked against the whole file.
    """
    if head.startswith(codecs.BOM_UTF8):
        if not _decodes_whole_file(path, "utf-8-sig"):
            raise UnreadableFile(
                "The file starts with a UTF-8 byte-order mark but contains bytes that are "
                f"not valid UTF-8. {SAVE_AS_CSV}"
            )
        return "utf-8-sig"

    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = _guess_utf16_without_bom(head) or ""
    if encoding:
        if not _decodes_whole_file(path, encoding):
            raise UnreadableFile(
                f"The file looks like UTF-16 text but contains bytes that are not valid UTF-16. "
                f"{SAVE_AS_CSV}"
            )
        return encoding

    valid_utf8, has_cp1252_undefined = _scan_single_byte_text(path)
    if valid_utf8:
        return "utf-8"
    return "latin-1" if has_cp1252_undefined else "cp1252"


def _guess_utf16_without_bom(head: bytes) -> str | None:
    """Recognise UTF-16 without a byte-order mark from the NULs of its ASCII characters.

    In mostly-ASCII UTF-16 text, every other byte is NUL: the odd ones in little-endian
    order, the even ones in big-endian order.
    """
    probe = head[:4096]
    pairs = len(probe) // 2
    if pairs < 2:
        return None
    even_nuls = probe[0 : pairs * 2 : 2].count(0)
    odd_nuls = probe[1 : pairs * 2 : 2].count(0)
    if odd_nuls >= pairs * 0.3 and even_nuls <= pairs * 0.05:
        return "utf-16-le"
    if even_nuls >= pairs * 0.3 and odd_nuls <= pairs * 0.05:
        return "utf-16-be"
    return None


def _decodes_whole_file(path: str | os.PathLike[str], encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as file:
        try:
            while chunk := file.read(CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _scan_single_byte_text(path: str | os.PathLike[str]) -> tuple[bool, bool]:
    """Stream the file once and return whether it is valid UTF-8 and whether it contains a
    byte that Windows-1252 leaves undefined."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    valid_utf8 = True
    has_cp1252_undefined = False
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            if valid_utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    valid_utf8 = False
            if not has_cp1252_undefined:
                has_cp1252_undefined = any(byte in chunk for byte in CP1252_UNDEFINED_BYTES)
            if not valid_utf8 and has_cp1252_undefined:
                break
    if valid_utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            valid_utf8 = False
    return valid_utf8, has_cp1252_undefined


def _reject_non_text(text: str) -> None:
    """Raise UnreadableFile for binary data and for text formats that are not CSV."""
    controls = len(CONTROL_CHARACTERS.findall(text))
    if controls > len(text) * MAX_CONTROL_RATIO:
        raise UnreadableFile(
            "This file contains binary data, not text. Upload the recipient list as a CSV "
            "file, for example by saving it from a spreadsheet as “CSV UTF-8”."
        )

    start = text.lstrip("\ufeff \t\r\n")
    if start.startswith("{\\rtf"):
        raise UnreadableFile(
            "This is a rich-text (RTF) document, not a CSV file. Copy the list into a "
            "spreadsheet, save it as “CSV UTF-8” and upload that file."
        )
    if start.startswith("<"):
        raise UnreadableFile(
            "This is a web page or an XML file, not a CSV file. Open it in a spreadsheet, "
            "save it as “CSV UTF-8” and upload that file."
        )
    if JSON_START.match(start):
        raise UnreadableFile(
            "This is a JSON file, not a CSV file. Convert the recipient list to CSV and "
            "upload that file."
        )


def _detect_delimiter(text: str, *, complete: bool) -> str:
    """Choose the delimiter that occurs outside quotes in most of the first records.

    For each candidate, the most common non-zero count per record is its usual count, and
    its score is the share of records with exactly that count. The best score wins if at
    least half of the records agree, and ties go in DELIMITER_CANDIDATES order. Without a
    winner (a single-column file), the delimiter is a comma. `complete` is True when `text`
    is the whole file. Otherwise its last record may be cut off and is ignored.
    """
    records = _unquoted_records(text, complete=complete)
    if not records:
        return ","

    best_delimiter = ","
    best_score = 0.0
    for delimiter in DELIMITER_CANDIDATES:
        counts = [record.count(delimiter) for record in records]
        present = Counter(count for count in counts if count > 0)
        if not present:
            continue
        usual_count = present.most_common(1)[0][0]
        score = counts.count(usual_count) / len(counts)
        if score >= 0.5 and score > best_score:
            best_delimiter = delimiter
            best_score = score
    return best_delimiter


def _unquoted_records(text: str, *, complete: bool) -> list[str]:
    """Split up to DELIMITER_SAMPLE_RECORDS non-blank records off `text`, each with its
    quoted sections removed, so that delimiters inside quotes are not counted."""
    records: list[str] = []
    parts: list[str] = []
    for match in DELIMITER_SCAN_TOKEN.finditer(text):
        token = match.group()
        if token in ("\r\n", "\r", "\n"):
            record = "".join(parts)
            parts = []
            if record.strip():
                records.append(record)
                if len(records) == DELIMITER_SAMPLE_RECORDS:
                    return records
        elif token.startswith('"'):
            if len(token) == 1 or not token.endswith('"'):
                # The quote is not closed within the sample.
                break
        else:
            parts.append(token)

    # The text after the last line end is a whole record only when `text` is the whole
    # file, but a cut-off record is better than none.
    last = "".join(parts)
    if last.strip() and (complete or not records):
        records.append(last)
    return records


@dataclass(frozen=True, slots=True)
class Record:
    """One non-blank record of a CSV file.

    `line` is the physical line (1-based) where the record starts. A quoted field with
    line breaks makes a record span several lines, and CRLF counts as one line end.
    `cells` are the raw values, not stripped, except that NUL characters are removed
    because PostgreSQL text cannot store them.
    """

    line: int
    cells: list[str]


class RecordReader:
    """Stream the non-blank records of a CSV file and report how far reading has got.

    Iterate it once, and read `bytes_read` (bytes of the file consumed so far, ahead of the
    records returned by at most the text layer's read-ahead, and never more than `size`)
    and `size` (the file's size in bytes) at any time. Use it as a context manager or call
    close().
    """

    def __init__(self, path: str | os.PathLike[str], fmt: FileFormat) -> None:
        self.format = fmt
        self.binary = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.size: int = os.fstat(self.binary.fileno()).st_size
        # newline="" keeps line ends inside quoted fields, as the csv module requires.
        self.text = io.TextIOWrapper(self.binary, encoding=fmt.encoding, newline="")

    @property
    def bytes_read(self) -> int:
        """Bytes of the file consumed so far, at most `size`."""
        if self.binary.closed:
            return self.size
        return min(self.binary.tell(), self.size)

    def __iter__(self) -> Iterator[Record]:
        reader = csv.reader(self.text, delimiter=self.format.delimiter)
        start = 1
        try:
            for cells in reader:
                line = start
                start = reader.line_num + 1
                joined = "".join(cells)
                if "\x00" in joined:
                    cells = [cell.replace("\x00", "") for cell in cells]
                    joined = joined.replace("\x00", "")
                if not joined or joined.isspace():
                    continue
                yield Record(line, cells)
        except csv.Error as exc:
            raise UnreadableFile(_csv_error_message(exc, start)) from exc
        except UnicodeDecodeError as exc:
            # The text layer decodes ahead of the csv module, so the line is unknown.
            raise UnreadableFile(
                f"The file is not valid {self.format.encoding_label} text. {SAVE_AS_CSV}"
            ) from exc

    def close(self) -> None:
        self.text.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _csv_error_message(exc: csv.Error, line: int) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"Line {line:,} has a field longer than {csv.field_size_limit():,} characters. "
            "This usually means that a quoted field on that line is missing its closing "
            "quotation mark."
        )
    return f"Line {line:,} could not be read as CSV: {exc}."


def iter_records(path: str | os.PathLike[str], fmt: FileFormat) -> Iterator[Record]:
    """Stream every non-blank record of the file in order, the header row included.

    Blank lines and rows whose cells are all empty or whitespace are skipped. Raises
    UnreadableFile for a field longer than the csv module's field size limit, naming the
    line where its record starts.
    """
    with RecordReader(path, fmt) as reader:
        yield from reader


class Field(StrEnum):
    """A recipient field that a column can fill."""

    NAME = "name"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    EMAIL = "email"
    PHONE = "phone"


@dataclass(frozen=True)
class Preview:
    """The start of a file, with a guess of its header and of its column mapping.

    `header` is the first record's cells, stripped of whitespace and invisible characters.
    `samples` are up to `sample_rows` raw records after the header, or the first ones when
    the file has no header. `column_count` is the widest of the header and the samples.
    """

    header: list[str]
    samples: list[list[str]]
    has_header: bool
    mapping: dict[Field, int]
    column_count: int


# Column titles for each field, as spreadsheets, mail clients, CRMs and mailing tools
# write them (for example Outlook's "E-mail Address" and "Mobile Phone", Google Contacts'
# "E-mail 1 - Value" and "Phone 1 - Value", Mailchimp's "Email Address", HubSpot's "Mobile
# Phone Number"). They are compared after normalize_title().
ALIASES: dict[Field, tuple[str, ...]] = {
    Field.NAME: (
        "name",
        "full name",
        "contact name",
        "contact full name",
        "recipient",
        "recipient name",
        "display name",
        "customer name",
        "subscriber name",
        # French, Spanish, Italian, German and Dutch exports.
        "nom complet",
        "nombre completo",
        "nome completo",
        "vollständiger name",
        "naam",
    ),
    Field.FIRST_NAME: (
        "first name",
        "given name",
        "forename",
        "first",
        "fname",
        "prénom",
        "nombre",
        "nome",
        "vorname",
        "voornaam",
    ),
    Field.LAST_NAME: (
        "last name",
        "surname",
        "family name",
        "last",
        "lname",
        # French exports title the family name "Nom" next to "Prénom".
        "nom",
        "apellido",
        "apellidos",
        "cognome",
        "sobrenome",
        "nachname",
        "familienname",
        "achternaam",
    ),
    Field.EMAIL: (
        "email",
        "e-mail",
        "email address",
        "e-mail address",
        "mail",
        "email 1",
        "e-mail 1 - value",
        "primary email",
        "email address 1",
        "recipient email",
        "contact email",
        "courriel",
        "adresse e-mail",
        "adresse électronique",
        "mél",
        "correo",
        "correo electrónico",
        "posta elettronica",
        "indirizzo email",
        "e-mail-adresse",
        "e-mailadres",
    ),
    Field.PHONE: (
        "phone",
        "phone number",
        "phone no",
        "mobile",
        "mobile number",
        "mobile no",
        "mobile phone",
        "mobile phone number",
        "cell",
        "cell phone",
        "cell number",
        "telephone",
        "telephone number",
        "tel",
        "msisdn",
        "sms",
        "sms number",
        "whatsapp",
        "whatsapp number",
        "phone 1 - value",
        "contact number",
        "téléphone",
        "numéro de téléphone",
        "portable",
        "téléphone portable",
        "numéro de portable",
        "teléfono",
        "móvil",
        "celular",
        "telefono",
        "cellulare",
        "telefone",
        "telemóvel",
        "telefon",
        "telefonnummer",
        "handy",
        "handynummer",
        "mobil",
        "mobilnummer",
        "mobiltelefon",
        "telefoon",
        "telefoonnummer",
        "mobiel",
    ),
}

# Endings of a normalised title that mark a field when no title matches an alias exactly,
# as in "Work Email" or "Home Phone". Names have none, because "company name" and
# "user name" would match.
FUZZY_SUFFIXES: dict[Field, tuple[str, ...]] = {
    Field.EMAIL: ("email", "emailaddress"),
    Field.PHONE: ("phone", "phonenumber", "mobile", "mobilenumber"),
}


def normalize_title(title: str) -> str:
    """Reduce a column title to its lower-case letters and digits.

    Spaces, punctuation, underscores, accents and invisible characters such as a
    byte-order mark or a zero-width space all go, so "E-mail_Address" and
    "\\ufeffemail address" both become "emailaddress".
    """
    folded = unicodedata.normalize("NFKD", title).casefold()
    # NFKD splits accented letters into a base letter and a combining mark
    # (category Mn), which goes with the punctuation: "Téléphone" matches
    # "telephone" as well as "téléphone".
    return "".join(
        character
        for character in folded
        if character.isalnum() and unicodedata.category(character) != "Mn"
    )


ALIAS_FIELDS: dict[str, Field] = {
    normalize_title(alias): field for field, aliases in ALIASES.items() for alias in aliases
}


def guess_mapping(header: list[str]) -> dict[Field, int]:
    """Map each recipient field to the index of the first column whose title names it.

    Titles match case-insensitively, ignoring spaces, punctuation, underscores and
    invisible characters. Exact alias matches take precedence over FUZZY_SUFFIXES, and a
    column fills at most one field. A full-name column wins over first and last name
    columns, because the mapping takes one or the other.
    """
    titles = [normalize_title(cell) for cell in header]
    mapping: dict[Field, int] = {}
    for index, title in enumerate(titles):
        field = ALIAS_FIELDS.get(title)
        if field is not None and field not in mapping:
            mapping[field] = index
    if Field.NAME in mapping:
        mapping.pop(Field.FIRST_NAME, None)
        mapping.pop(Field.LAST_NAME, None)

    used = set(mapping.values())
    for field, suffixes in FUZZY_SUFFIXES.items():
        if field in mapping:
            continue
        for index, title in enumerate(titles):
            if index not in used and title.endswith(suffixes):
                mapping[field] = index
                used.add(index)
                break
    return mapping


def preview(path: str | os.PathLike[str], fmt: FileFormat, *, sample_rows: int = 5) -> Preview:
    """Read the first records of a file and guess its header and column mapping.

    Raises UnreadableFile when the file has no record at all.
    """
    with RecordReader(path, fmt) as reader:
        records: list[list[str]] = []
        for record in reader:
            records.append(record.cells)
            if len(records) > sample_rows:
                break
    if not records:
        raise UnreadableFile("The file contains no data: every line is blank.")

    first = records[0]
    header = [_strip_invisible(cell) for cell in first]
    header_mapping = guess_mapping(header)
    has_header = bool(header_mapping) or not _looks_like_data(first)

    if has_header:
        samples = records[1 : sample_rows + 1]
        mapping = dict(header_mapping)
        # Titles that match no alias still let the values show the email and phone columns.
        value_mapping = _guess_mapping_from_values(samples)
        used = set(mapping.values())
        for field in (Field.EMAIL, Field.PHONE):
            index = value_mapping.get(field)
            if field not in mapping and index is not None and index not in used:
                mapping[field] = index
                used.add(index)
    else:
        samples = records[:sample_rows]
        mapping = _guess_mapping_from_values(samples)

    column_count = max(len(row) for row in [header, *samples])
    return Preview(header, samples, has_header, mapping, column_count)


def _strip_invisible(cell: str) -> str:
    return cell.strip().strip("\ufeff\u200b\u200c\u200d\u2060").strip()


def _looks_like_email(value: str) -> bool:
    return EMAIL_LIKE.search(value) is not None


def _looks_like_phone(value: str) -> bool:
    value = value.strip()
    if PHONE_CHARACTERS.fullmatch(value) is None:
        return False
    return sum(character.isdigit() for character in value) >= MIN_PHONE_DIGITS


def _looks_like_data(cells: list[str]) -> bool:
    """Return whether a record contains an email address or a phone number, so it is no header."""
    return any(_looks_like_email(cell) or _looks_like_phone(cell) for cell in cells)


def _guess_mapping_from_values(rows: list[list[str]]) -> dict[Field, int]:
    """Guess the email, phone and name columns from the values of a few records.

    The email column is the one where most values contain "@", the phone column the one
    where most values look like phone numbers, and the name column the first other column
    where most values are non-empty text with a letter. "Most" means more than half.
    """
    if not rows:
        return {}
    width = max(len(row) for row in rows)
    columns = [
        [row[index].strip() if index < len(row) else "" for row in rows] for index in range(width)
    ]
    majority = len(rows) / 2
    mapping: dict[Field, int] = {}

    def best_column(matches: Callable[[str], bool]) -> int | None:
        best_index = None
        best_count = 0
        for index, values in enumerate(columns):
            if index in mapping.values():
                continue
            count = sum(1 for value in values if matches(value))
            if count > majority and count > best_count:
                best_index = index
                best_count = count
        return best_index

    email = best_column(lambda value: "@" in value)
    if email is not None:
        mapping[Field.EMAIL] = email
    phone = best_column(_looks_like_phone)
    if phone is not None:
        mapping[Field.PHONE] = phone

    for index, values in enumerate(columns):
        if index in mapping.values():
            continue
        texts = sum(1 for value in values if any(character.isalpha() for character in value))
        if texts > majority:
            mapping[Field.NAME] = index
            break
    return mapping
