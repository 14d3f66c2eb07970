"""The forms of an import: the file upload and the column mapping."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from campaigns.normalization import phone_regions
from imports import reader
from imports.models import RecipientImport
from imports.uploads import FILE_FIELD, FileReceiver, StoredUpload, too_large_message

# A sample value longer than this is cut in the column choices.
SAMPLE_LABEL_MAX_LENGTH = 40


class ImportFileForm(forms.Form):
    """The CSV file, read once it is stored: an unreadable file is a form error.

    `file_format` and `preview` hold what the reader found in a valid file.
    """

    file = forms.FileField(
        label="CSV file",
        allow_empty_file=True,
        error_messages={"required": "Choose a CSV file to import."},
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,text/csv"}),
    )

    def __init__(
        self,
        *args: Any,
        receiver: FileReceiver | None = None,
        required: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.receiver = receiver
        self.file_format: reader.FileFormat | None = None
        self.preview: reader.Preview | None = None
        # A file over the limit never reaches request.FILES, and the field's
        # own "required" check must not hide why.
        self.rejected_size = receiver.rejected_size if receiver is not None else None
        self.fields[FILE_FIELD].required = required and self.rejected_size is None

    @property
    def has_file(self) -> bool:
        """Whether the request carried a file, kept or rejected."""
        return FILE_FIELD in self.files or self.rejected_size is not None

    def keep_file(self) -> None:
        """Keep the stored file, which an import committed in the database now names."""
        if self.receiver is not None:
            self.receiver.keep()

    def clean_file(self) -> StoredUpload | None:
        rejected_size = self.rejected_size
        if rejected_size is not None:
            raise ValidationError(too_large_message(rejected_size))
        upload = self.cleaned_data.get(FILE_FIELD)
        if upload is None:
            return None
        assert isinstance(upload, StoredUpload)
        try:
            self.file_format = reader.detect_format(upload.path)
            self.preview = reader.preview(upload.path, self.file_format)
        except reader.UnreadableFile as exc:
            raise ValidationError(str(exc)) from None
        return upload


# The form's fields, in page order, with the model field of their column.
MAPPED_FIELDS = {
    "name": "name_column",
    "first_name": "first_name_column",
    "last_name": "last_name_column",
    "email": "email_column",
    "phone": "phone_column",
}
FIELD_LABELS = {
    "name": "Name",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "phone": "Phone",
}
NOT_IN_FILE = "— not in the file —"


def column_letter(index: int) -> str:
    """Name a column as spreadsheets do: A to Z, then AA, AB and so on."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def column_count(recipient_import: RecipientImport) -> int:
    rows = [recipient_import.column_titles, *recipient_import.sample_rows]
    return max((len(row) for row in rows), default=0)


def column_choices(recipient_import: RecipientImport) -> list[tuple[str, str]]:
    """Label each column with its letter, its title and its first sample value."""
    titles = recipient_import.column_titles
    choices = [("", NOT_IN_FILE)]
    for index in range(column_count(recipient_import)):
        label = column_letter(index)
        title = titles[index].strip() if index < len(titles) else ""
        if title:
            label += f" · {_shorten(title)}"
        sample = next(
            (
                row[index].strip()
                for row in recipient_import.sample_rows
                if index < len(row) and row[index].strip()
            ),
            "",
        )
        if sample:
            label += f" ({_shorten(sample)})"
        choices.append((str(index), label))
    return choices


def _shorten(text: str) -> str:
    if len(text) <= SAMPLE_LABEL_MAX_LENGTH:
        return text
    return text[: SAMPLE_LABEL_MAX_LENGTH - 1] + "…"


class MappingForm(forms.Form):
    """The column of each recipient field, whether the first row contains titles,
    and the region of phone numbers written without a country code."""

    has_header = forms.BooleanField(label="First row holds column titles", required=False)
    phone_region = forms.ChoiceField(
        label="Phone numbers without a country code are from",
        choices=phone_regions,
    )

    def __init__(self, *args: Any, recipient_import: RecipientImport, **kwargs: Any) -> None:
        initial = {
            field: getattr(recipient_import, model_field)
            for field, model_field in MAPPED_FIELDS.items()
        }
        initial["has_header"] = recipient_import.has_header
        initial["phone_region"] = recipient_import.phone_region
        kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        self.recipient_import = recipient_import
        choices = column_choices(recipient_import)
        mapped = {
            field: forms.TypedChoiceField(
                label=FIELD_LABELS[field],
                choices=choices,
                coerce=int,
                empty_value=None,
                required=False,
            )
            for field in MAPPED_FIELDS
        }
        # The column selects come first, in page order.
        self.fields = {**mapped, **self.fields}

    @property
    def column_fields(self) -> list[forms.BoundField]:
        return [self[field] for field in MAPPED_FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        columns = {field: cleaned.get(field) for field in MAPPED_FIELDS}
        if self.errors:
            return cleaned
        if columns["email"] is None and columns["phone"] is None:
            raise ValidationError(
                "Choose the column of email addresses or the column of phone numbers: "
                "each recipient needs one of them."
            )
        if columns["name"] is not None and (
            columns["first_name"] is not None or columns["last_name"] is not None
        ):
            raise ValidationError(
                "Choose either a Name column or First name and Last name columns, not both."
            )
        first_field_of: dict[int, str] = {}
        for field, column in columns.items():
            if column is None:
                continue
            if column in first_field_of:
                self.add_error(
                    field,
                    f"Column {column_letter(column)} already fills "
                    f"{FIELD_LABELS[first_field_of[column]]}; a column can fill one field only.",
                )
            else:
                first_field_of[column] = field
        return cleaned

    def mapping_fields(self) -> dict[str, Any]:
        """Return the model fields that the confirmed mapping sets, for `transition()`."""
        fields = {
            model_field: self.cleaned_data[field] for field, model_field in MAPPED_FIELDS.items()
        }
        fields["has_header"] = self.cleaned_data["has_header"]
        fields["phone_region"] = self.cleaned_data["phone_region"]
        return fields
