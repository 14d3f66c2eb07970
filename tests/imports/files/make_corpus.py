"""Write the corpus files whose bytes a text editor would not show or would change.

These are the files in other encodings, with CR or CRLF line ends, with invisible or NUL
characters, and the binary files that are not CSV at all. The plain UTF-8 files of the
corpus are written by hand and kept next to this script.

Run it from the repository root after changing it, and commit the files it writes:

    .venv/bin/python tests/imports/files/make_corpus.py

tests/imports/test_reader.py checks that the committed files match its output.
"""

from __future__ import annotations

import io
import random
import struct
import sys
import zipfile
import zlib
from pathlib import Path

# A fixed timestamp keeps the ZIP-based files identical on every run.
ZIP_TIMESTAMP = (2024, 1, 1, 0, 0, 0)


def text_files() -> dict[str, bytes]:
    """Return the CSV text files in unusual encodings or with unusual line ends."""
    return {
        "utf8_bom_semicolon.csv": (
            "\ufeffFull Name;E-Mail;Phone Number\r\n"
            "Zoë Brontë;zoe@example.com;+33 1 23 45 67 89\r\n"
            "Søren Kierkegaard;soren@example.com;\r\n"
        ).encode("utf-8"),
        # Spreadsheets save "Unicode text" as tab-delimited UTF-16 LE with a BOM.
        "utf16le_bom_tab.txt": (
            "\ufeffName\tEmail\tMobile\r\n"
            "Zoë Brontë\tzoe@example.com\t+33 1 23 45 67 89\r\n"
            "李小龙\tlee@example.com\t+852 2345 6789\r\n"
        ).encode("utf-16-le"),
        "utf16be_bom.csv": ("\ufeffname,email\r\nZoë Brontë,zoe@example.com\r\n").encode(
            "utf-16-be"
        ),
        "utf16le_no_bom.csv": (
            "Name,Phone\nJosé Álvarez,+34 912 345 678\nAda Lovelace,+44 20 7946 0958\n"
        ).encode("utf-16-le"),
        "utf16be_no_bom.csv": ("Email\nada@example.com\ngrace@example.com\n").encode("utf-16-be"),
        # Curly quotes, a euro sign and accents: bytes 0x93, 0x94, 0x80 and 0xE9 are not
        # valid UTF-8 here.
        "windows1252.csv": (
            "Name,Email,Note\r\n“Chloé” Dubois,chloe@example.com,Paid €20\r\n"
        ).encode("cp1252"),
        # Byte 0x8D is undefined in Windows-1252, so only Latin-1 decodes this file.
        "latin1.csv": (
            b"Name,Email\r\n"
            b"Jos\xe9 M\xfcller,jose@example.com\r\n"
            b"Bj\xf6rn\x8d,bjorn@example.com\r\n"
        ),
        # Quoted fields with a delimiter, a CRLF line break and doubled quotes inside.
        "crlf_quoted.csv": (
            b"Name,Email,Notes\r\n"
            b'"Lovelace, Ada",ada@example.com,"first line\r\nsecond line"\r\n'
            b'"Grace ""Amazing Grace"" Hopper",grace@example.com,\r\n'
            b'Alan Turing,alan@example.com,"said ""hello, world"""\r\n'
        ),
        # Classic Mac OS line ends: a lone CR, also inside a quoted field.
        "cr_only.csv": (
            b'Name,Email\rAda Lovelace,ada@example.com\r"Grace\rHopper",grace@example.com\r'
        ),
        # A file saved with a BOM twice (the decoder removes only the first) and a
        # zero-width space and a no-break space around the other titles.
        "invisible_header.csv": (
            "\ufeff\ufeffE_MAIL,\u200bPhone_Number,\u00a0Full-Name\u00a0\n"
            "ada@example.com,+44 20 7946 0958,Ada Lovelace\n"
        ).encode("utf-8"),
        "nul_in_text.csv": (
            b"Name,Email\nAda\x00 Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n"
        ),
    }


def binary_files() -> dict[str, bytes]:
    """Return files of other types, each just large enough to be recognised."""
    return {
        "image.png": png_image(),
        # The JFIF header only: enough for the signature, not a decodable image.
        "photo.jpg": b"\xff\xd8\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9",
        "animation.gif": gif_image(),
        "document.pdf": (
            b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
            b"trailer << /Root 1 0 R >>\n%%EOF\n"
        ),
        "workbook.xlsx": zip_archive(
            {
                "[Content_Types].xml": CONTENT_TYPES,
                "xl/workbook.xml": (
                    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                    '<sheets><sheet name="Recipients" sheetId="1"/></sheets></workbook>'
                ),
                "xl/worksheets/sheet1.xml": (
                    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                    "<sheetData/></worksheet>"
                ),
            }
        ),
        "spreadsheet.ods": zip_archive(
            {
                # OpenDocument requires this member first and uncompressed.
                "mimetype": "application/vnd.oasis.opendocument.spreadsheet",
                "content.xml": (
                    '<office:document-content xmlns:office="urn:oasis:names:tc:'
                    'opendocument:xmlns:office:1.0"/>'
                ),
            }
        ),
        "document.docx": zip_archive(
            {
                "[Content_Types].xml": CONTENT_TYPES,
                "word/document.xml": (
                    '<w:document xmlns:w="http://schemas.openxmlformats.org/'
                    'wordprocessingml/2006/main"><w:body/></w:document>'
                ),
            }
        ),
        "archive.zip": zip_archive({"recipients.csv": "name,email\nAda,ada@example.com\n"}),
        # The OLE2 compound-file signature of Excel 97-2003 workbooks, then an empty header.
        "legacy.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
        "compressed.csv.gz": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + bytes(20),
        "utf32_bom.csv": "\ufeffname,email\n".encode("utf-32-le"),
        # Bytes without a known signature, such as an executable or an encrypted file.
        "random.bin": random.Random(5).randbytes(2048),
    }


CONTENT_TYPES = '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'


def png_image() -> bytes:
    """Build a valid 1x1 white PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = zlib.compress(b"\x00\xff")  # filter type 0, one white pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def gif_image() -> bytes:
    """Build a valid 1x1 GIF with a two-colour palette."""
    screen = struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)  # global palette of 2 colours
    palette = b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    # LZW minimum code size 2, then one data sub-block: clear code, pixel 0, end code.
    pixels = b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + palette + image + pixels + b"\x3b"


def zip_archive(members: dict[str, str]) -> bytes:
    """Build an uncompressed ZIP archive, so its bytes do not depend on the zlib version."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIMESTAMP), content)
    return buffer.getvalue()


def corpus() -> dict[str, bytes]:
    """Return every generated file by name."""
    return text_files() | binary_files()


def write_corpus(directory: Path) -> None:
    for name, content in corpus().items():
        (directory / name).write_bytes(content)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    write_corpus(target)
