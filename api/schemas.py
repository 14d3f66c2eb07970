"""Request and response bodies of the API (pydantic, through django-ninja)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field, StrictBool, model_validator

from campaigns.models import CAMPAIGN_NAME_MAX_LENGTH, CampaignStatus, RecipientStatus


def _encodable(value: str) -> str:
    """Reject text that PostgreSQL cannot store: JSON escapes of lone UTF-16 surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "The text contains an unpaired surrogate escape (such as \\udc00), which is not "
            "a character."
        ) from None
    return value


# Text that can be stored: every string field of a request body.
Text = Annotated[str, AfterValidator(_encodable)]


class StrictSchema(Schema):
    """A request body that rejects fields it does not know, so that typos are not
    ignored."""

    model_config = ConfigDict(extra="forbid")


class RecipientIn(StrictSchema):
    name: Text = ""
    email: Text = ""
    phone_number: Text = Field(
        "", description="With + and the country code, or a number of PHONE_DEFAULT_REGION."
    )

    @model_validator(mode="before")
    @classmethod
    def _object(cls, value: Any) -> Any:
        # Ninja would read the attributes of any value, so that null or a
        # bare string became an empty row.
        if value is None or isinstance(value, (str, bytes, int, float, list, tuple)):
            raise ValueError('Each recipient must be an object, such as {"email": "..."}.')
        return value


class RecipientsIn(StrictSchema):
    recipients: list[RecipientIn] = Field(
        description="At most API_MAX_RECIPIENTS_PER_REQUEST (10,000 by default) rows."
    )
    skip_invalid: StrictBool = Field(
        False,
        description="Save the valid rows and report the others in `skipped`, instead of "
        "rejecting the whole request with 422.",
    )


class CampaignIn(RecipientsIn):
    recipients: list[RecipientIn] = Field(
        default_factory=list,
        description="At most API_MAX_RECIPIENTS_PER_REQUEST (10,000 by default) rows; none "
        "creates an empty campaign.",
    )
    name: Text = Field(min_length=1, max_length=CAMPAIGN_NAME_MAX_LENGTH)
    email_subject: Text = ""
    email_text: Text = ""
    email_html: Text = ""
    sms_text: Text = ""
    prefer_sms: StrictBool = False


class RowError(Schema):
    row: int | None = Field(
        description="Index of the recipient in the request, from 0; null for an error of "
        "the campaign's own fields."
    )
    field: str | None = Field(description="The field at fault, or null for the whole row.")
    message: str


class ErrorOut(Schema):
    """The body of every error response."""

    code: str = Field(description="Stable error code, such as not_found or token_invalid.")
    message: str = Field(description="What failed and what to do, in plain English.")
    errors: list[RowError] | None = Field(
        None, description="Each invalid field or recipient row, for validation errors."
    )
    status: CampaignStatus | None = Field(
        None, description="The campaign's current status, for a refused transition (409)."
    )


class ProgressOut(Schema):
    total: int
    queued: int
    in_flight: int
    sent: int
    failed: int
    cancelled: int
    suppressed: int
    processed: int
    percent: int


class CampaignOut(Schema):
    id: int
    name: str
    status: CampaignStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    paused_at: datetime | None
    cancelled_at: datetime | None
    pause_reason: str
    email_subject: str
    email_text: str
    email_html: str
    sms_text: str
    prefer_sms: bool
    progress: ProgressOut


class RecipientsAddedOut(Schema):
    added: int
    skipped: list[RowError]


class CampaignCreatedOut(RecipientsAddedOut):
    campaign: CampaignOut


class CampaignPage(Schema):
    items: list[CampaignOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class RecipientOut(Schema):
    id: int
    name: str
    email: str
    phone_number: str
    status: RecipientStatus
    channel: str
    attempts: int
    failure_reason: str
    processed_at: datetime | None


class RecipientPage(Schema):
    items: list[RecipientOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class AttemptOut(Schema):
    number: int
    started_at: datetime
    finished_at: datetime
    outcome: str
    provider_message_id: str
    error: str


class TransitionOut(Schema):
    campaign: CampaignOut


class StreamUrlOut(Schema):
    url: str = Field(description="Path of the campaign's event stream, with its signed access.")
    expires_at: datetime
