"""The API's operations on campaigns, recipients and delivery attempts.

Each operation works in the token's workspace, as the web pages work in the
session's: another workspace's campaign returns 404. State changes go
through the Campaign model's transitions and are recorded in the audit log
with the token's user as the actor, as the web actions are.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from ninja import Header, Query, Status

from accounts.workspaces import current_workspace, get_campaign, workspace_campaigns
from api import idempotency
from api.cursors import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from api.errors import ApiError, error_body
from api.ninja_api import api
from api.rows import CheckedRows, RowError, check_rows
from api.schemas import (
    AttemptOut,
    CampaignCreatedOut,
    CampaignIn,
    CampaignOut,
    CampaignPage,
    ErrorOut,
    RecipientPage,
    RecipientsAddedOut,
    RecipientsIn,
    StreamUrlOut,
    TransitionOut,
)
from audit.models import Action, record
from campaigns import actions
from campaigns.forms import CampaignForm
from campaigns.models import Campaign, Recipient, RecipientStatus
from live.access import PARAMETER, StreamAccess, sign_access
from live.broadcasts import broadcast_refresh

logger = logging.getLogger(__name__)

THROUGH_API = "through the API"
# Recipients inserted per statement.
INSERT_BATCH_SIZE = 1000

# Error responses that every operation may return.
COMMON_ERRORS: dict[int, Any] = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}
BODY_ERRORS: dict[int, Any] = {**COMMON_ERRORS, 413: ErrorOut}

IDEMPOTENCY_KEY = Header(
    None,
    alias=idempotency.HEADER,
    description="Makes a retry of this request return the first response instead of "
    "doing the work again, for API_IDEMPOTENCY_KEY_HOURS (24 by default).",
)


# --- Campaigns -----------------------------------------------------------------


@api.post(
    "/campaigns",
    response={201: CampaignCreatedOut, 409: ErrorOut, **BODY_ERRORS},
    summary="Create a campaign with its content and recipients",
    url_name="campaigns",
)
def create_campaign(
    request: HttpRequest,
    payload: CampaignIn,
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> Status[dict[str, Any]]:
    """Create a pending campaign with its message content and recipients.

    The content and the recipient rows are validated as the campaign form
    and the CSV import validate them. Any invalid row rejects the whole
    request (422, nothing saved) unless `skip_invalid` is true, in which
    case the valid rows are saved and the invalid ones listed in `skipped`.
    """
    _check_row_count(len(payload.recipients))
    workspace = current_workspace(request)
    status, body = idempotency.run_once(
        workspace.pk,
        idempotency_key,
        "create_campaign",
        payload.model_dump(mode="json"),
        partial(_create_campaign, request, payload),
    )
    return Status(status, body)


def _create_campaign(request: HttpRequest, payload: CampaignIn) -> tuple[int, dict[str, Any]]:
    form = CampaignForm(
        data={
            "name": payload.name,
            "email_subject": payload.email_subject,
            "email_text": payload.email_text,
            "email_html": payload.email_html,
            "sms_text": payload.sms_text,
            # A BooleanField reads any non-empty string as true.
            "prefer_sms": "on" if payload.prefer_sms else "",
        },
        instance=Campaign(workspace=current_workspace(request)),
    )
    field_errors = [
        RowError(None, name, str(message))
        for name, messages in form.errors.items()
        for message in messages
    ]
    checked = check_rows(payload.recipients, campaign=None)
    if field_errors or (checked.errors and not payload.skip_invalid):
        return 422, _invalid_body([*field_errors, *checked.errors])

    campaign = form.save()
    added = _insert(campaign, checked)
    record(campaign, Action.CREATED, request.user, f"{THROUGH_API}, with {added} recipients")
    logger.info("campaign %s: created through the API with %d recipients", campaign.pk, added)
    return 201, {
        "campaign": _fresh(campaign.pk),
        "added": added,
        "skipped": [error.as_dict() for error in checked.errors],
    }


@api.get(
    "/campaigns",
    response={200: CampaignPage, **COMMON_ERRORS},
    summary="List the workspace's campaigns, newest first",
    url_name="campaign_list",
)
def list_campaigns(
    request: HttpRequest,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    after = decode_cursor("c", cursor)
    campaigns = workspace_campaigns(request, Campaign.objects.with_progress()).order_by("-id")
    if after is not None:
        campaigns = campaigns.filter(pk__lt=after)
    page = list(campaigns[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [campaign_out(campaign) for campaign in page],
        "next_cursor": encode_cursor("c", page[-1].pk) if more else None,
    }


@api.get(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, **COMMON_ERRORS},
    summary="Get a campaign with its status and progress counts",
    url_name="campaign",
)
def get_campaign_detail(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    campaign = get_campaign(request, campaign_id, Campaign.objects.with_progress())
    return campaign_out(campaign)


# --- Recipients and attempts -------------------------------------------------


@api.post(
    "/campaigns/{campaign_id}/recipients",
    response={201: RecipientsAddedOut, 409: ErrorOut, **BODY_ERRORS},
    summary="Add recipients to a pending campaign",
    url_name="recipients",
)
def add_recipients(
    request: HttpRequest, campaign_id: int, payload: RecipientsIn
) -> Status[dict[str, Any]]:
    """Add recipients to a pending campaign, with the rules and modes of create_campaign.

    A row whose email address or phone number the campaign already has is
    invalid too.
    """
    _check_row_count(len(payload.recipients))
    campaign = get_campaign(request, campaign_id)
    try:
        with transaction.atomic():
            # The row lock makes a concurrent dispatch wait, and the status
            # check rejects an addition that comes after one.
            locked = (
                Campaign.objects.select_for_update()
                .filter(pk=campaign.pk, status=Campaign.Status.PENDING)
                .exists()
            )
            if not locked:
                return Status(409, _not_pending(campaign.pk))
            checked = check_rows(payload.recipients, campaign=campaign)
            if checked.errors and not payload.skip_invalid:
                return Status(422, _invalid_body(checked.errors))
            added = _insert(campaign, checked)
            if added:
                record(
                    campaign,
                    Action.RECIPIENT_ADDED,
                    request.user,
                    f"{added} recipients added {THROUGH_API}",
                )
                transaction.on_commit(partial(broadcast_refresh, campaign.pk, None))
    except IntegrityError:
        # Checked under the lock, so only a writer that does not take the
        # lock, such as the admin, can get here.
        logger.warning("campaign %s: recipients conflict on API insert", campaign.pk, exc_info=True)
        raise ApiError(
            409,
            "recipients_conflict",
            "Another change added some of these email addresses or phone numbers at the same "
            "time. Send the request again to see which rows are affected.",
        ) from None
    logger.info("campaign %s: %d recipients added through the API", campaign.pk, added)
    return Status(201, {"added": added, "skipped": [error.as_dict() for error in checked.errors]})


@api.get(
    "/campaigns/{campaign_id}/recipients",
    response={200: RecipientPage, **COMMON_ERRORS},
    summary="List a campaign's recipients in id order",
    url_name="recipient_list",
)
def list_recipients(
    request: HttpRequest,
    campaign_id: int,
    status: RecipientStatus | None = None,
    cursor: str | None = None,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    # The cursor names its list: this campaign, with this status filter.
    kind = f"r{campaign_id}-{status or ''}"
    after = decode_cursor(kind, cursor)
    campaign = get_campaign(request, campaign_id)
    recipients = campaign.recipients.order_by("id")
    if status is not None:
        recipients = recipients.filter(status=status)
    if after is not None:
        recipients = recipients.filter(pk__gt=after)
    page = list(recipients[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [_recipient_out(recipient) for recipient in page],
        "next_cursor": encode_cursor(kind, page[-1].pk) if more else None,
    }


@api.get(
    "/campaigns/{campaign_id}/recipients/{recipient_id}/attempts",
    response={200: list[AttemptOut], **COMMON_ERRORS},
    summary="List a recipient's delivery attempts",
    url_name="attempts",
)
def list_attempts(request: HttpRequest, campaign_id: int, recipient_id: int) -> list[Any]:
    campaign = get_campaign(request, campaign_id)
    recipient = get_object_or_404(Recipient, pk=recipient_id, campaign_id=campaign.pk)
    return list(recipient.delivery_attempts.order_by("number", "id"))


# --- Transitions -------------------------------------------------------------

TRANSITION_RESPONSES: dict[int, Any] = {200: TransitionOut, 409: ErrorOut, **COMMON_ERRORS}


@api.post(
    "/campaigns/{campaign_id}/dispatch",
    response=TRANSITION_RESPONSES,
    summary="Dispatch a pending campaign",
    url_name="dispatch",
)
def dispatch_campaign(
    request: HttpRequest, campaign_id: int, idempotency_key: str | None = IDEMPOTENCY_KEY
) -> Status[dict[str, Any]]:
    """Start delivering a pending campaign; 409 with the reason when it cannot start."""
    campaign = get_campaign(request, campaign_id)
    status, body = idempotency.run_once(
        campaign.workspace_id,
        idempotency_key,
        f"dispatch_campaign:{campaign.pk}",
        None,
        partial(_dispatch, request, campaign),
    )
    return Status(status, body)


def _dispatch(request: HttpRequest, campaign: Campaign) -> tuple[int, dict[str, Any]]:
    if actions.dispatch(campaign, request.user, THROUGH_API):
        logger.info("campaign %s: dispatch requested through the API", campaign.pk)
        return 200, {"campaign": _fresh(campaign.pk)}

    campaign.refresh_from_db()
    status = campaign.status
    if status == Campaign.Status.PENDING:
        missing = campaign.missing_content()
        if missing:
            return 409, error_body("missing_content", " ".join(missing), status=status)
        if campaign.active_import() is not None:
            return 409, error_body(
                "import_running",
                "An import into this campaign is still running. Dispatch it once the import "
                "has finished, so that every imported recipient is included.",
                status=status,
            )
        return 409, error_body(
            "no_recipients", "The campaign has no recipients. Add one first.", status=status
        )
    return 409, error_body(
        "invalid_transition",
        f"Only a pending campaign can be dispatched; this one is {status}.",
        status=status,
    )


@api.post(
    "/campaigns/{campaign_id}/pause",
    response=TRANSITION_RESPONSES,
    summary="Pause a processing campaign",
    url_name="pause",
)
def pause_campaign(request: HttpRequest, campaign_id: int) -> Status[dict[str, Any]]:
    campaign = get_campaign(request, campaign_id)
    paused = actions.pause(
        campaign, request.user, f"paused by an operator {THROUGH_API}", THROUGH_API
    )
    if not paused:
        return Status(409, _refused(campaign.pk, "Only a processing campaign can be paused"))
    logger.info("campaign %s: paused through the API", campaign.pk)
    return Status(200, {"campaign": _fresh(campaign.pk)})


@api.post(
    "/campaigns/{campaign_id}/resume",
    response=TRANSITION_RESPONSES,
    summary="Resume a paused campaign",
    url_name="resume",
)
def resume_campaign(request: HttpRequest, campaign_id: int) -> Status[dict[str, Any]]:
    campaign = get_campaign(request, campaign_id)
    if not actions.resume(campaign, request.user, THROUGH_API).resumed:
        return Status(409, _refused(campaign.pk, "Only a paused campaign can be resumed"))
    logger.info("campaign %s: resumed through the API", campaign.pk)
    return Status(200, {"campaign": _fresh(campaign.pk)})


@api.post(
    "/campaigns/{campaign_id}/cancel",
    response=TRANSITION_RESPONSES,
    summary="Cancel a pending, processing or paused campaign",
    url_name="cancel",
)
def cancel_campaign(request: HttpRequest, campaign_id: int) -> Status[dict[str, Any]]:
    campaign = get_campaign(request, campaign_id)
    if not actions.cancel(campaign, request.user, THROUGH_API):
        rule = "Only a pending, processing or paused campaign can be cancelled"
        return Status(409, _refused(campaign.pk, rule))
    logger.info("campaign %s: cancelled through the API", campaign.pk)
    return Status(200, {"campaign": _fresh(campaign.pk)})


# --- Live stream -------------------------------------------------------------


@api.post(
    "/campaigns/{campaign_id}/stream-url",
    response={200: StreamUrlOut, **COMMON_ERRORS},
    summary="Get a short-lived URL of the campaign's live event stream",
    url_name="stream_url",
)
def stream_url(request: HttpRequest, campaign_id: int) -> dict[str, Any]:
    """Return a signed URL that opens the campaign's event stream without a session.

    For EventSource, which cannot send an Authorization header. The URL
    works for API_STREAM_URL_MAX_AGE_SECONDS (300 by default), while the
    token's user is still a member of the workspace.
    """
    campaign = get_campaign(request, campaign_id)
    access = StreamAccess(campaign.pk, int(request.user.pk or 0), campaign.workspace_id)
    query = urlencode({PARAMETER: sign_access(access)})
    max_age = timedelta(seconds=settings.API_STREAM_URL_MAX_AGE_SECONDS)
    return {
        "url": f"{reverse('live:campaign_stream', args=[campaign.pk])}?{query}",
        "expires_at": timezone.now() + max_age,
    }


# --- Helpers -----------------------------------------------------------------


def campaign_out(campaign: Campaign) -> dict[str, Any]:
    progress = campaign.progress()
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "created_at": campaign.created_at,
        "started_at": campaign.started_at,
        "completed_at": campaign.completed_at,
        "paused_at": campaign.paused_at,
        "cancelled_at": campaign.cancelled_at,
        "pause_reason": campaign.pause_reason,
        "email_subject": campaign.email_subject,
        "email_text": campaign.email_text,
        "email_html": campaign.email_html,
        "sms_text": campaign.sms_text,
        "prefer_sms": campaign.prefer_sms,
        "progress": {
            "total": progress.total,
            "queued": progress.queued,
            "in_flight": progress.in_flight,
            "sent": progress.sent,
            "failed": progress.failed,
            "cancelled": progress.cancelled,
            "suppressed": progress.suppressed,
            "processed": progress.processed,
            "percent": progress.percent,
        },
    }


def _fresh(campaign_id: int) -> dict[str, Any]:
    """Return the campaign as stored now, in JSON-ready form (it may be stored for replays)."""
    campaign = Campaign.objects.with_progress().get(pk=campaign_id)
    return CampaignOut.model_validate(campaign_out(campaign)).model_dump(mode="json")


def _recipient_out(recipient: Recipient) -> dict[str, Any]:
    return {
        "id": recipient.pk,
        "name": recipient.name,
        "email": recipient.email,
        "phone_number": recipient.phone_number,
        "status": recipient.status,
        "channel": recipient.channel,
        "attempts": recipient.attempts,
        "failure_reason": recipient.failure_reason,
        "processed_at": recipient.processed_at,
    }


def _check_row_count(count: int) -> None:
    limit = settings.API_MAX_RECIPIENTS_PER_REQUEST
    if count > limit:
        raise ApiError(
            422,
            "too_many_recipients",
            f"The request has {count} recipients; at most {limit} fit in one request "
            "(API_MAX_RECIPIENTS_PER_REQUEST). Send them in several requests: the others "
            "with POST /api/v1/campaigns/{id}/recipients.",
        )


def _invalid_body(errors: list[RowError]) -> dict[str, Any]:
    if any(error.row is None for error in errors):
        advice = "Fix the fields in errors."
    else:
        advice = 'Fix the rows in errors, or send "skip_invalid": true to save the valid ones.'
    return error_body(
        "validation_failed",
        f"{len(errors)} error(s) in the request; nothing was saved. {advice}",
        errors=[error.as_dict() for error in errors],
    )


def _insert(campaign: Campaign, checked: CheckedRows) -> int:
    for recipient in checked.valid:
        recipient.campaign = campaign
    Recipient.objects.bulk_create(checked.valid, batch_size=INSERT_BATCH_SIZE)
    return len(checked.valid)


def _not_pending(campaign_id: int) -> dict[str, Any]:
    status = _stored_status(campaign_id)
    return error_body(
        "campaign_not_pending",
        f"Recipients can be added only to a pending campaign; this one is {status}.",
        status=status,
    )


def _refused(campaign_id: int, rule: str) -> dict[str, Any]:
    status = _stored_status(campaign_id)
    return error_body("invalid_transition", f"{rule}; this one is {status}.", status=status)


def _stored_status(campaign_id: int) -> str:
    status = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
    if status is None:
        raise ApiError(404, "not_found", "The campaign was deleted.")
    return str(status)
