"""Receiving an import's CSV file: streamed to IMPORT_FILES_DIR, with a size limit.

`receive_file(request)` installs `ImportFileHandler` as the request's only
upload handler. It must run before anything reads `request.POST` or
`request.FILES`, which is why the views that take a file are exempt from the
CSRF middleware and check the token themselves afterwards (`csrf_protect`).
The handler writes the file's bytes straight into IMPORT_FILES_DIR under a
random name, so no copy of the file sits in memory or in a temporary folder
of Django's, and it stops writing once the file is larger than
IMPORT_MAX_FILE_MEGABYTES.

NOTE: under ASGI (uvicorn), Django reads the whole request body into a
spooled temporary file before any view or handler runs. There the size limit
saves the disk space of IMPORT_FILES_DIR and the parsing time, but not the
transfer of an oversized body. A limit in the proxy in front of the app
(nginx's client_max_body_size, for example) rejects it before the transfer.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from campaigns.models import Campaign
from imports import reader
from imports.models import RecipientImport

logger = logging.getLogger(__name__)

# The form field that carries the file on both upload pages.
FILE_FIELD = "file"

# A request body may be this much larger than its file: the other form
# fields (at most DATA_UPLOAD_MAX_MEMORY_SIZE) and the multipart boundaries.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def max_file_bytes() -> int:
    return settings.IMPORT_MAX_FILE_MEGABYTES * 1024 * 1024


def too_large_message(size: int) -> str:
    """Build the form error for a file of `size` bytes that is over the limit."""
    return (
        f"The file is {_megabytes(size)}; the largest file an import takes is "
        f"{settings.IMPORT_MAX_FILE_MEGABYTES} MB. Split it into smaller files and "
        "import them one after the other."
    )


def _megabytes(size: int) -> str:
    megabytes = size / (1024 * 1024)
    if megabytes >= 10:
        return f"{megabytes:,.0f} MB"
    return f"{megabytes:,.1f} MB"


class StoredUpload(UploadedFile):
    """An uploaded file that already sits in IMPORT_FILES_DIR under `stored_name`."""

    def __init__(self, name: str, stored_name: str, size: int) -> None:
        super().__init__(file=None, name=name, content_type="text/csv", size=size)
        self.stored_name = stored_name

    @property
    def path(self) -> Path:
        return Path(settings.IMPORT_FILES_DIR) / self.stored_name


class ImportFileHandler(FileUploadHandler):
    """Writes the file of field FILE_FIELD to IMPORT_FILES_DIR, up to `max_bytes`.

    A larger file is deleted as soon as it passes the limit, and the rest of
    its bytes are only counted, so that the error can give its size. A request
    whose Content-Length already exceeds the limit by more than the other
    fields can take writes nothing at all, but its other fields are still
    parsed, the CSRF token among them. Files of other fields are dropped.
    """

    def __init__(self, request: HttpRequest, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.request_too_large = False
        # The file being received, and its size so far.
        self.stored_name: str | None = None
        self.destination: IO[bytes] | None = None
        self.receiving = False
        self.size = 0
        # The outcome: the stored file, or the size of a file over the limit.
        self.upload: StoredUpload | None = None
        self.rejected_size: int | None = None

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        if content_length > self.max_bytes + MULTIPART_OVERHEAD_BYTES:
            self.request_too_large = True

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.receiving = field_name == FILE_FIELD and self.upload is None
        self.size = 0
        if not self.receiving or self.request_too_large:
            return
        folder = Path(settings.IMPORT_FILES_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        self.stored_name = f"{secrets.token_hex(16)}.csv"
        # "x" fails rather than overwrite, should two random names ever meet.
        self.destination = (folder / self.stored_name).open("xb")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if not self.receiving:
            return None
        self.size += len(raw_data)
        if self.destination is not None:
            if self.size > self.max_bytes:
                self._delete()
            else:
                self.destination.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StoredUpload | None:
        if not self.receiving:
            return None
        self.receiving = False
        if self.destination is None:
            # Over the limit, judged by Content-Length or by counting. The
            # parser went through the whole body, so the count is exact.
            self.rejected_size = self.size
            return None
        self.destination.close()
        self.destination = None
        assert self.stored_name is not None
        self.upload = StoredUpload(self.file_name or "upload.csv", self.stored_name, self.size)
        return self.upload

    def upload_interrupted(self) -> None:
        """Delete the partial file when the request fails while it is being received."""
        self._delete()

    def _delete(self) -> None:
        if self.destination is not None:
            self.destination.close()
            self.destination = None
        if self.stored_name is not None:
            with suppress(FileNotFoundError):
                (Path(settings.IMPORT_FILES_DIR) / self.stored_name).unlink()
            self.stored_name = None


class FileReceiver:
    """The file that the request's upload handler received, and its clean-up.

    The stored file is deleted by `discard()` unless `keep()` was called
    first, which a view does once the import that names the file committed.
    """

    def __init__(self, handler: ImportFileHandler) -> None:
        self.handler = handler
        self.kept = False

    @property
    def upload(self) -> StoredUpload | None:
        return self.handler.upload

    @property
    def rejected_size(self) -> int | None:
        """Size in bytes of a file that was over the limit and not kept, or None."""
        if self.handler.upload is not None:
            return None
        return self.handler.rejected_size

    def keep(self) -> None:
        self.kept = True

    def discard(self) -> None:
        upload = self.handler.upload
        if upload is None or self.kept:
            return
        with suppress(FileNotFoundError):
            upload.path.unlink()


def receive_file(request: HttpRequest) -> FileReceiver:
    """Make the request's file upload go to IMPORT_FILES_DIR; call it before reading POST."""
    handler = ImportFileHandler(request, max_file_bytes())
    request.upload_handlers = [handler]
    return FileReceiver(handler)


def create_import(
    campaign: Campaign,
    upload: StoredUpload,
    file_format: reader.FileFormat,
    preview: reader.Preview,
) -> RecipientImport:
    """Create the import of a stored upload, waiting for its mapping, from what the reader found."""
    mapping = preview.mapping
    recipient_import = RecipientImport.objects.create(
        campaign=campaign,
        file_name=(upload.name or "upload.csv")[:255],
        stored_name=upload.stored_name,
        file_size=upload.size or 0,
        encoding=file_format.encoding,
        delimiter=file_format.delimiter,
        column_titles=preview.header if preview.has_header else [],
        sample_rows=preview.samples,
        has_header=preview.has_header,
        name_column=mapping.get(reader.Field.NAME),
        first_name_column=mapping.get(reader.Field.FIRST_NAME),
        last_name_column=mapping.get(reader.Field.LAST_NAME),
        email_column=mapping.get(reader.Field.EMAIL),
        phone_column=mapping.get(reader.Field.PHONE),
        phone_region=settings.PHONE_DEFAULT_REGION,
    )
    logger.info(
        "campaign %s: import %s uploaded (%s, %s, %s, %s)",
        campaign.pk,
        recipient_import.pk,
        recipient_import.file_name,
        filesizeformat(recipient_import.file_size),
        file_format.encoding,
        file_format.delimiter_label,
    )
    return recipient_import
