"""Import recipients from a CSV file into a pending campaign, from the command line."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.normalization import is_phone_region
from imports import reader, report
from imports.forms import MappingForm
from imports.jobs import Counts, run_import
from imports.models import RecipientImport
from imports.uploads import StoredUpload, create_import, max_file_bytes, too_large_message

FIELDS = ("name", "first_name", "last_name", "email", "phone")


class Command(BaseCommand):
    help = (
        "Import recipients from a CSV file into a pending campaign. Columns are found from "
        "the header row; the options override the guess."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int, help="Id of a pending campaign.")
        parser.add_argument("path", type=Path, help="The CSV file.")
        for name in FIELDS:
            option = name.replace("_", "-")
            parser.add_argument(
                f"--{option}",
                metavar="COLUMN",
                help=f"The {name.replace('_', ' ')} column: its title, or its number from 1.",
            )
        parser.add_argument(
            "--no-header", action="store_true", help="The first row is data, not column titles."
        )
        parser.add_argument(
            "--region",
            default=settings.PHONE_DEFAULT_REGION,
            help="Region of phone numbers written without a country code "
            "(default: PHONE_DEFAULT_REGION, %(default)s).",
        )
        parser.add_argument(
            "--report", type=Path, metavar="PATH", help="Write the rows not added to this CSV file."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(pk=options["campaign_id"]).first()
        if campaign is None:
            raise CommandError(f"No campaign has the id {options['campaign_id']}.")
        if not campaign.is_editable:
            raise CommandError(
                f"Campaign “{campaign.name}” is {campaign.get_status_display().lower()}; "
                "recipients can only be imported into a pending campaign."
            )
        region = options["region"].upper()
        if not is_phone_region(region):
            raise CommandError(f"“{options['region']}” is not a region code such as US or GB.")

        recipient_import = self._register(campaign, options["path"], options, region)
        self.stdout.write(self._describe(recipient_import))
        run_import(recipient_import.pk, on_progress=self._progress)
        recipient_import.refresh_from_db()
        self.stdout.write("")
        if recipient_import.status != RecipientImport.Status.COMPLETED:
            raise CommandError(recipient_import.error or f"The import {recipient_import.status}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Added {recipient_import.rows_added:,} of {recipient_import.rows_read:,} rows; "
                f"{recipient_import.rows_duplicate:,} "
                f"duplicate{pluralize(recipient_import.rows_duplicate)} skipped, "
                f"{recipient_import.rows_invalid:,} invalid."
            )
        )
        for issue in recipient_import.issues.order_by("line")[:10]:
            self.stdout.write(f"  line {issue.line}: {issue.reason}")
        if recipient_import.rows_reported > 10:
            self.stdout.write(f"  … and {recipient_import.rows_reported - 10:,} more.")
        if options["report"]:
            self._write_report(recipient_import, options["report"])

    def _register(
        self, campaign: Campaign, source: Path, options: dict[str, Any], region: str
    ) -> RecipientImport:
        """Copy the file next to the uploads, read its header and queue the import."""
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise CommandError(f"Cannot read {source}: {exc.strerror}.") from None
        if size > max_file_bytes():
            raise CommandError(f"{source}: {too_large_message(size)} (IMPORT_MAX_FILE_MEGABYTES)")
        settings.IMPORT_FILES_DIR.mkdir(parents=True, exist_ok=True)
        stored_name = f"{uuid.uuid4().hex}.csv"
        stored = settings.IMPORT_FILES_DIR / stored_name
        shutil.copyfile(source, stored)
        try:
            file_format = reader.detect_format(stored)
            preview = reader.preview(stored, file_format)
            has_header = preview.has_header and not options["no_header"]
            mapping = {str(field): column for field, column in preview.mapping.items()}
            if options["no_header"] and preview.has_header:
                # The guess came from titles that are data after all.
                mapping = {}
            for name in FIELDS:
                if options[name]:
                    mapping[name] = _column(
                        options[name], preview.header, has_header, preview.column_count
                    )
            if "email" not in mapping and "phone" not in mapping:
                raise CommandError(
                    "No email or phone column was found. Name one with --email or --phone; "
                    f"the columns are: {_columns_list(preview.header, has_header)}."
                )
            with transaction.atomic():
                # As the web page does: the campaign must still be pending when
                # the import is queued, and a dispatch waits for this.
                if (
                    not Campaign.objects.select_for_update()
                    .filter(pk=campaign.pk, status=Campaign.Status.PENDING)
                    .exists()
                ):
                    raise CommandError("The campaign was dispatched meanwhile; nothing imported.")
                upload = StoredUpload(source.name, stored_name, size)
                recipient_import = create_import(campaign, upload, file_format, preview)
                # The mapping page's form judges the mapping, so both paths
                # accept the same ones.
                data = {name: str(mapping.get(name, "")) for name in FIELDS}
                data.update(has_header="on" if has_header else "", phone_region=region)
                form = MappingForm(data, recipient_import=recipient_import)
                if not form.is_valid():
                    raise CommandError(_form_errors(form, preview.header, has_header))
                recipient_import.transition(
                    [RecipientImport.Status.MAPPING],
                    RecipientImport.Status.QUEUED,
                    queued_at=timezone.now(),
                    **form.mapping_fields(),
                )
                return recipient_import
        except reader.UnreadableFile as exc:
            stored.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        except IntegrityError:
            stored.unlink(missing_ok=True)
            raise CommandError(
                "Another import into this campaign is queued or running; wait for it to end."
            ) from None
        except BaseException:
            stored.unlink(missing_ok=True)
            raise

    def _describe(self, recipient_import: RecipientImport) -> str:
        file_format = reader.FileFormat(recipient_import.encoding, recipient_import.delimiter)
        titles = recipient_import.column_titles
        lines = [
            f"Importing {recipient_import.file_name} ({file_format.encoding_label}, "
            f"{file_format.delimiter_label}-separated) into campaign "
            f"{recipient_import.campaign_id}:"
        ]
        for name, column in recipient_import.mapping().items():
            title = titles[column] if recipient_import.has_header and column < len(titles) else ""
            label = f"column {column + 1}" + (f" “{title}”" if title else "")
            lines.append(f"  {name.replace('_', ' ')}: {label}")
        lines.append(f"  phone numbers without a country code: {recipient_import.phone_region}")
        return "\n".join(lines)

    def _progress(self, recipient_import: RecipientImport, counts: Counts) -> None:
        if not sys.stdout.isatty():
            return
        self.stdout.write(
            f"\r  {recipient_import.percent_read:3d}% read: {counts.rows_read:,} rows, "
            f"{counts.valid:,} valid, {counts.invalid:,} invalid",
            ending="",
        )
        self.stdout.flush()

    def _write_report(self, recipient_import: RecipientImport, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as output:
            for text in report.iter_lines(recipient_import.pk):
                output.write(text)
        self.stdout.write(f"Report of {recipient_import.rows_reported:,} rows written to {path}.")


def _column(value: str, header: list[str], has_header: bool, count: int) -> int:
    """Find a column by its number from 1, or by its title ignoring case."""
    if value.isdigit():
        number = int(value)
        if not 1 <= number <= count:
            raise CommandError(
                f"There is no column {number}: the file has columns 1 to {count}, "
                f"which are: {_columns_list(header, has_header)}."
            )
        return number - 1
    wanted = value.strip().casefold()
    if has_header:
        for index, title in enumerate(header):
            if title.strip().casefold() == wanted:
                return index
    raise CommandError(
        f"No column is titled “{value}”; the columns are: {_columns_list(header, has_header)}."
    )


def _form_errors(form: MappingForm, header: list[str], has_header: bool) -> str:
    """Turn the mapping form's errors into one message that names the options."""
    messages: list[str] = []
    for field, errors in form.errors.items():
        option = "" if field == "__all__" else f"--{field.replace('_', '-')}: "
        messages.extend(f"{option}{error}" for error in errors)
    columns = _columns_list(header, has_header)
    return " ".join(messages) + f" The columns are: {columns}."


def _columns_list(header: list[str], has_header: bool) -> str:
    if not has_header:
        return ", ".join(str(number) for number in range(1, len(header) + 1))
    return ", ".join(f"{number} “{title}”" for number, title in enumerate(header, start=1))
