"""Validation of imported rows, run in the import job's worker processes.

Each row goes through the same cleaning as the campaign form
(campaigns/normalization.py). A chunk's rows, valid or not, are written with
one COPY into the import's staging table. Duplicates are found later in SQL
(imports/jobs.py), across the whole file and against the campaign.

The module needs no Django set-up: a worker process imports it, opens its
own psycopg connection and handles chunks until the job ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from campaigns.normalization import InvalidContact, clean_email, clean_name, clean_phone

# The staging table's columns, in COPY order. The raw_* columns hold the
# file's value only where it differs from the cleaned one, or for an invalid
# row; the report shows raw values.
STAGING_COLUMNS = ("line", "name", "email", "phone", "raw_name", "raw_email", "raw_phone", "reason")

# One row as the job hands it over: line number, raw name, raw email, raw phone.
RawRow = tuple[int, str, str, str]


@dataclass(frozen=True)
class Columns:
    """The column position of each recipient field in a record, or None."""

    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    email: int | None = None
    phone: int | None = None

    def extract(self, line: int, cells: list[str]) -> RawRow:
        """Pick the raw name, email and phone out of a record's cells."""
        if self.name is not None:
            name = _cell(cells, self.name)
        else:
            first, last = _cell(cells, self.first_name), _cell(cells, self.last_name)
            name = f"{first.strip()} {last.strip()}".strip() if first or last else ""
        return line, name, _cell(cells, self.email), _cell(cells, self.phone)


def _cell(cells: list[str], column: int | None) -> str:
    if column is None or column >= len(cells):
        return ""
    value = cells[column]
    # PostgreSQL text cannot hold a NUL character; a file may.
    return value.replace("\x00", "") if "\x00" in value else value


def validate(name: str, email: str, phone: str, region: str) -> tuple[str, str, str, str | None]:
    """Clean one row; returns (name, email, phone, reason), reason None when valid.

    A row is rejected as a whole when any of its values is invalid, as the
    form rejects it, and when it has neither an email address nor a phone
    number.
    """
    problems = []
    try:
        name = clean_name(name)
    except InvalidContact as exc:
        problems.append(f"Name: {exc}")
    try:
        email = clean_email(email)
    except InvalidContact as exc:
        problems.append(f"Email: {exc}")
    try:
        phone = clean_phone(phone, region)
    except InvalidContact as exc:
        problems.append(f"Phone: {exc}")
    if problems:
        return name, email, phone, " ".join(problems)
    if not email and not phone:
        return name, email, phone, "No email address or phone number."
    return name, email, phone, None


def copy_rows(
    connection: psycopg.Connection, table: str, region: str, rows: list[RawRow]
) -> tuple[int, int]:
    """Validate `rows` and COPY them into the staging `table`; returns (valid, invalid)."""
    valid = invalid = 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, STAGING_COLUMNS))
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for line, raw_name, raw_email, raw_phone in rows:
            name, email, phone, reason = validate(raw_name, raw_email, raw_phone, region)
            if reason is None:
                valid += 1
                copy.write_row(
                    (
                        line,
                        name,
                        email,
                        phone,
                        raw_name if raw_name != name else None,
                        raw_email if raw_email != email else None,
                        raw_phone if raw_phone != phone else None,
                        None,
                    )
                )
            else:
                invalid += 1
                copy.write_row((line, "", "", "", raw_name, raw_email, raw_phone, reason))
    return valid, invalid


# A worker process's own connection, opened by `start_worker`.
_worker_connection: psycopg.Connection | None = None


def start_worker(connection_params: dict[str, object]) -> None:
    """Open the worker process's connection (ProcessPoolExecutor's initializer)."""
    global _worker_connection
    _worker_connection = psycopg.connect(**connection_params, autocommit=True)  # type: ignore[arg-type]


def copy_chunk(table: str, region: str, rows: list[RawRow]) -> tuple[int, int]:
    """Validate and stage one chunk in a worker process; returns (valid, invalid)."""
    assert _worker_connection is not None, "start_worker() was not called in this process"
    return copy_rows(_worker_connection, table, region, rows)
