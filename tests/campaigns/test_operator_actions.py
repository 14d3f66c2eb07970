"""Pause, resume, cancel and retry failed: the POST views behind the header's buttons.

Each view makes one model transition and redirects to the campaign page
with a message. It adds its live update to the campaign's Redis stream only
after its transaction commits, as resume and retry failed enqueue their
worker wake-ups. Tests that read the stream or the enqueued jobs need
`django_db(transaction=True)`, because on_commit callbacks never run inside
the transaction that pytest-django wraps around other tests.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from campaigns.models import Campaign, Recipient
from tests.conftest import StreamListener
from tests.outcomes import claim, move_to_status, set_outcome

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

MakeCampaign = Callable[..., Campaign]
JobQueue = Callable[[], list[dict[str, Any]]]
Listen = Callable[[Campaign], StreamListener]

# Each action, with the campaign status that it starts from.
ACTIONS = {
    "pause": "processing",
    "resume": "paused",
    "cancel": "processing",
    "retry_failed": "completed",
}


def action_url(action: str, campaign_id: int) -> str:
    return reverse(f"campaigns:{action}", args=[campaign_id])


def flash_messages(response: TestResponse) -> list[tuple[str, str]]:
    """The (level, text) of each message shown on the page that the redirect led to."""
    html = response.content.decode()
    return re.findall(r'<li class="flash flash-(\w+)" role="status">(.*?)</li>', html)


def jobs_summary(jobs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(task name, positional arguments, keyword arguments) of each job, as Celery shows them."""
    return [
        (job["headers"]["task"], job["headers"]["argsrepr"], job["headers"]["kwargsrepr"])
        for job in jobs
    ]


def announced(listener: StreamListener) -> list[dict[str, str]]:
    """The fields of each entry added to the campaign's live-update stream."""
    return [entry.fields for entry in listener.entries()]


def stored_status(campaign: Campaign) -> str:
    return Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)


def statuses(campaign: Campaign) -> list[str]:
    return list(campaign.recipients.order_by("id").values_list("status", flat=True))


def completed_with_failures(make_campaign: MakeCampaign) -> Campaign:
    """A completed campaign: one sent, one failed transiently, one failed permanently."""
    campaign = make_campaign()
    assert campaign.start()
    sent, transient, permanent = campaign.recipients.order_by("id")
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(transient, Recipient.Status.FAILED, "timed out", transient=True)
    assert set_outcome(permanent, Recipient.Status.FAILED, "Mailbox full")
    assert campaign.complete()
    return campaign


# Pause


@pytest.mark.django_db(transaction=True)
def test_pause_pauses_processing_campaign(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    listener = listen(campaign)

    response = client.post(action_url("pause", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert campaign.pause_reason == "paused by an operator"
    assert campaign.paused_at is not None
    assert flash_messages(response) == [
        ("success", "Paused. Deliveries already in flight finish; nothing new starts.")
    ]
    # It should show the reason and offer Resume on the page it redirects to.
    html = response.content.decode()
    assert "Paused: paused by an operator" in html
    assert ">Resume</button>" in html
    # It should announce the change on the campaign's stream, after the
    # commit, and enqueue nothing: the open pages render the new header.
    assert announced(listener) == [{"kind": "campaign"}]
    assert job_queue() == []


@pytest.mark.django_db
def test_pause_keeps_recipients(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    in_flight, sent, _queued = campaign.recipients.order_by("id")
    assert claim(in_flight)
    assert set_outcome(sent, Recipient.Status.SENT)

    client.post(action_url("pause", campaign.pk))

    assert stored_status(campaign) == Campaign.Status.PAUSED
    assert statuses(campaign) == ["in_flight", "sent", "queued"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["pending", "paused", "completed", "cancelled"])
def test_pause_rejected_unless_processing(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)
    before = Campaign.objects.get(pk=campaign.pk)
    listener = listen(campaign)

    response = client.post(action_url("pause", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [
        ("error", f"Only a processing campaign can be paused; this one is {status}.")
    ]
    after = Campaign.objects.get(pk=campaign.pk)
    assert after.status == status
    assert after.paused_at == before.paused_at
    assert after.pause_reason == before.pause_reason
    assert job_queue() == []
    assert announced(listener) == []


# Resume


@pytest.mark.django_db(transaction=True)
def test_resume_restarts_paused_campaign(
    client: Client,
    make_campaign: MakeCampaign,
    job_queue: JobQueue,
    listen: Listen,
    settings: Settings,
) -> None:
    settings.DISPATCH_WORKERS_PER_CAMPAIGN = 3
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    campaign.count_outcomes(processed=10, failed=5)
    assert campaign.pause("5 failures since the last resume (limit 5)")
    listener = listen(campaign)

    response = client.post(action_url("resume", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert campaign.pause_reason == ""
    assert (campaign.processed_since_resume, campaign.failed_since_resume) == (0, 0)
    assert flash_messages(response) == [
        ("success", "Resumed. Delivery continues with the queued recipients.")
    ]
    assert statuses(campaign) == ["queued"] * 3
    # It should wake DISPATCH_WORKERS_PER_CAMPAIGN worker loops and announce the change.
    worker_loop = ("dispatch.process_campaign", f"({campaign.pk},)", "{}")
    assert jobs_summary(job_queue()) == [worker_loop] * 3
    assert announced(listener) == [{"kind": "campaign"}]


@pytest.mark.django_db(transaction=True)
def test_resume_with_nothing_left_completes(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    for recipient in campaign.recipients.all():
        assert set_outcome(recipient, Recipient.Status.SENT)
    assert campaign.pause("by hand")
    listener = listen(campaign)

    response = client.post(action_url("resume", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert campaign.completed_at is not None
    assert flash_messages(response) == [
        ("success", "Resumed; nothing was left to deliver, so it is completed.")
    ]
    # It should announce the completion once and wake no worker loop.
    assert announced(listener) == [{"kind": "campaign"}]
    assert job_queue() == []


@pytest.mark.django_db(transaction=True)
def test_resume_waits_for_in_flight(
    client: Client,
    make_campaign: MakeCampaign,
    job_queue: JobQueue,
    listen: Listen,
    settings: Settings,
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    in_flight, *others = campaign.recipients.order_by("id")
    for recipient in others:
        assert set_outcome(recipient, Recipient.Status.SENT)
    assert claim(in_flight)
    assert campaign.pause("by hand")
    listener = listen(campaign)

    response = client.post(action_url("resume", campaign.pk), follow=True)

    # It should not complete while a claim may still record an outcome.
    assert stored_status(campaign) == Campaign.Status.PROCESSING
    assert flash_messages(response) == [
        ("success", "Resumed. Delivery continues with the queued recipients.")
    ]
    # It should wake worker loops, which finish the campaign once the claim is recorded.
    tasks = [task for task, _, _ in jobs_summary(job_queue())]
    assert tasks == ["dispatch.process_campaign"] * settings.DISPATCH_WORKERS_PER_CAMPAIGN
    assert announced(listener) == [{"kind": "campaign"}]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["pending", "processing", "completed", "cancelled"])
def test_resume_rejected_unless_paused(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)
    listener = listen(campaign)

    response = client.post(action_url("resume", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [
        ("error", f"Only a paused campaign can be resumed; this one is {status}.")
    ]
    assert stored_status(campaign) == status
    assert job_queue() == []
    assert announced(listener) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_resumes_wake_workers_once(
    signed_in: Callable[..., Client],
    make_campaign: MakeCampaign,
    job_queue: JobQueue,
    listen: Listen,
    settings: Settings,
) -> None:
    settings.DISPATCH_WORKERS_PER_CAMPAIGN = 2
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PAUSED)
    listener = listen(campaign)
    requests = 10
    barrier = threading.Barrier(requests)
    statuses_seen: list[int] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait(timeout=10)
            statuses_seen.append(signed_in().post(action_url("resume", campaign.pk)).status_code)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert statuses_seen == [303] * requests
    tasks = [task for task, _, _ in jobs_summary(job_queue())]
    # Only the request whose UPDATE won should wake workers and announce the change.
    assert tasks == ["dispatch.process_campaign"] * 2
    assert announced(listener) == [{"kind": "campaign"}]
    assert stored_status(campaign) == Campaign.Status.PROCESSING


# Cancel


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["processing", "paused"])
def test_cancel_cancels_queued_recipients(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen, status: str
) -> None:
    campaign = make_campaign(recipients=[{"email": f"user{n}@example.com"} for n in range(4)])
    in_flight, sent, failed, _queued = campaign.recipients.order_by("id")
    move_to_status(campaign, status)
    assert claim(in_flight)
    assert set_outcome(sent, Recipient.Status.SENT)
    assert set_outcome(failed, Recipient.Status.FAILED, "Mailbox full")
    listener = listen(campaign)

    response = client.post(action_url("cancel", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.cancelled_at is not None
    assert flash_messages(response) == [
        (
            "success",
            "Cancelled. Queued recipients will not be sent; deliveries in flight keep "
            "their outcome.",
        )
    ]
    # It should cancel only the queued recipient.
    assert statuses(campaign) == ["in_flight", "sent", "failed", "cancelled"]
    # It should ask open pages to refresh, because many rows changed at once.
    assert announced(listener) == [{"kind": "refresh", "request_id": ""}]
    assert job_queue() == []


@pytest.mark.django_db
def test_cancel_pending_campaign(client: Client, make_campaign: MakeCampaign) -> None:
    # The page offers Delete rather than Cancel for a pending campaign, but
    # the model allows it, so a request from an older page still works.
    campaign = make_campaign()

    response = client.post(action_url("cancel", campaign.pk))

    assert response.status_code == 303
    assert stored_status(campaign) == Campaign.Status.CANCELLED
    assert statuses(campaign) == ["cancelled"] * 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_cancel_rejected_when_finished(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)
    before = statuses(campaign)
    listener = listen(campaign)

    response = client.post(action_url("cancel", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [
        ("error", f"This campaign can no longer be cancelled; it is {status}.")
    ]
    assert stored_status(campaign) == status
    assert statuses(campaign) == before
    assert job_queue() == []
    assert announced(listener) == []


# Retry failed


@pytest.mark.django_db(transaction=True)
def test_retry_failed_queues_transient_failures(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen
) -> None:
    campaign = completed_with_failures(make_campaign)
    listener = listen(campaign)

    response = client.post(action_url("retry_failed", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert campaign.completed_at is None
    assert flash_messages(response) == [("success", "1 failed recipient queued again.")]
    assert statuses(campaign) == ["sent", "queued", "failed"]
    # It should start the campaign again and ask open pages to refresh.
    assert jobs_summary(job_queue()) == [("dispatch.start_campaign", f"({campaign.pk},)", "{}")]
    assert announced(listener) == [{"kind": "refresh", "request_id": ""}]


# Refresh of other pages

# A request id as Turbo 8 sends it in X-Turbo-Request-Id.
TURBO_REQUEST_ID = "1b0e6f1c-9d2a-4c6e-8f3b-2a7d5c9e0f41"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"X-Turbo-Request-Id": TURBO_REQUEST_ID}, TURBO_REQUEST_ID),
        ({}, None),
        ({"X-Turbo-Request-Id": 'x" onclick="alert(1)'}, None),
        ({"X-Turbo-Request-Id": "a" * 65}, None),
    ],
    ids=["turbo", "missing", "markup", "too-long"],
)
@pytest.mark.parametrize("action", ["cancel", "retry_failed"])
def test_refresh_carries_turbo_request_id(
    client: Client,
    make_campaign: MakeCampaign,
    listen: Listen,
    action: str,
    header: dict[str, str],
    expected: str | None,
) -> None:
    # The page that sent the request skips a refresh that names its request id.
    if action == "cancel":
        campaign = make_campaign()
        move_to_status(campaign, Campaign.Status.PROCESSING)
    else:
        campaign = completed_with_failures(make_campaign)
    listener = listen(campaign)

    response = client.post(action_url(action, campaign.pk), headers=header)

    assert response.status_code == 303
    # An empty request_id stands for none.
    assert announced(listener) == [{"kind": "refresh", "request_id": expected or ""}]


@pytest.mark.django_db
def test_retry_failed_message_counts_plural(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    for recipient in campaign.recipients.all():
        assert set_outcome(recipient, Recipient.Status.FAILED, "timed out", transient=True)
    assert campaign.complete()

    response = client.post(action_url("retry_failed", campaign.pk), follow=True)

    assert flash_messages(response) == [("success", "3 failed recipients queued again.")]
    assert statuses(campaign) == ["queued"] * 3


@pytest.mark.django_db(transaction=True)
def test_retry_failed_rejected_without_transient(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    sent, *failed = campaign.recipients.order_by("id")
    assert set_outcome(sent, Recipient.Status.SENT)
    for recipient in failed:
        assert set_outcome(recipient, Recipient.Status.FAILED, "Mailbox full")
    assert campaign.complete()
    listener = listen(campaign)

    response = client.post(action_url("retry_failed", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [
        (
            "error",
            "No failed recipient can be retried: only failures from transient errors "
            "(timeouts, rate limits, server errors) are retried.",
        )
    ]
    assert stored_status(campaign) == Campaign.Status.COMPLETED
    assert statuses(campaign) == ["sent", "failed", "failed"]
    assert job_queue() == []
    assert announced(listener) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["pending", "processing", "paused", "cancelled"])
def test_retry_failed_rejected_unless_completed(
    client: Client, make_campaign: MakeCampaign, job_queue: JobQueue, listen: Listen, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)
    listener = listen(campaign)

    response = client.post(action_url("retry_failed", campaign.pk), follow=True)

    assert response.redirect_chain == [(campaign.get_absolute_url(), 303)]
    assert flash_messages(response) == [
        ("error", f"Only a completed campaign can retry failures; this one is {status}.")
    ]
    assert stored_status(campaign) == status
    assert job_queue() == []
    assert announced(listener) == []


# What every action shares


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "status"), ACTIONS.items())
def test_action_rejects_get(
    client: Client, make_campaign: MakeCampaign, action: str, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    response = client.get(action_url(action, campaign.pk))

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert stored_status(campaign) == status


@pytest.mark.django_db
@pytest.mark.parametrize("action", ACTIONS)
def test_action_unknown_campaign_is_404(client: Client, action: str) -> None:
    response = client.post(action_url(action, 987654321))

    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "status"), ACTIONS.items())
def test_action_requires_csrf_token(
    signed_in: Callable[..., Client], make_campaign: MakeCampaign, action: str, status: str
) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)
    client = signed_in(enforce_csrf_checks=True)

    response = client.post(action_url(action, campaign.pk))

    assert response.status_code == 403
    assert stored_status(campaign) == status


@pytest.mark.django_db
def test_action_accepts_turbo_csrf_header(
    signed_in: Callable[..., Client], make_campaign: MakeCampaign
) -> None:
    # Headers that a live stream renders carry no token in their forms, so
    # Turbo sends the one from the page's meta tag in X-CSRF-Token.
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    client = signed_in(enforce_csrf_checks=True)
    page = client.get(campaign.get_absolute_url())
    token = str(page.context["csrf_token"])

    response = client.post(action_url("pause", campaign.pk), headers={"X-CSRF-Token": token})

    assert response.status_code == 303
    assert stored_status(campaign) == Campaign.Status.PAUSED
