"""The dispatch view: one conditional UPDATE, and a job enqueued only by the winner."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign
from tests.factories import operator_workspace


def dispatch_url(campaign: Campaign) -> str:
    return reverse("campaigns:dispatch", args=[campaign.pk])


@pytest.mark.django_db(transaction=True)
def test_dispatch_starts_campaign_and_enqueues_job(client, make_campaign, job_queue):
    campaign = make_campaign()

    response = client.post(dispatch_url(campaign))

    assert response.status_code == 303
    assert response["Location"] == campaign.get_absolute_url()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
    assert campaign.started_at is not None
    jobs = job_queue()
    assert len(jobs) == 1
    assert jobs[0]["headers"]["task"] == "dispatch.start_campaign"
    assert jobs[0]["headers"]["argsrepr"] == f"({campaign.pk},)"


@pytest.mark.django_db(transaction=True)
def test_second_dispatch_enqueues_nothing(client, make_campaign, job_queue):
    campaign = make_campaign()
    client.post(dispatch_url(campaign))

    response = client.post(dispatch_url(campaign), follow=True)

    assert len(job_queue()) == 1
    assert "already dispatched" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_dispatch_refuses_empty_campaign(client, job_queue):
    campaign = Campaign.objects.create(workspace=operator_workspace(), name="Nobody")

    response = client.post(dispatch_url(campaign), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING
    assert job_queue() == []
    assert "no recipients" in response.content.decode()


@pytest.mark.django_db
def test_dispatch_rejects_get(client, make_campaign):
    campaign = make_campaign()

    response = client.get(dispatch_url(campaign))

    assert response.status_code == 405
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING


@pytest.mark.django_db
def test_dispatch_requires_csrf_token(signed_in: Callable[..., Client], make_campaign):
    campaign = make_campaign()
    client = signed_in(enforce_csrf_checks=True)

    response = client.post(dispatch_url(campaign))

    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_dispatch_accepts_turbo_csrf_header(
    signed_in: Callable[..., Client], make_campaign, job_queue
):
    campaign = make_campaign()
    client = signed_in(enforce_csrf_checks=True)
    page = client.get(campaign.get_absolute_url())
    token = page.context["csrf_token"]

    response = client.post(dispatch_url(campaign), headers={"X-CSRF-Token": str(token)})

    assert response.status_code == 303
    assert len(job_queue()) == 1


@pytest.mark.django_db
def test_dispatch_unknown_campaign_is_404(client):
    response = client.post(reverse("campaigns:dispatch", args=[987654321]))

    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatches_enqueue_one_job(
    signed_in: Callable[..., Client], make_campaign, job_queue
):
    campaign = make_campaign()
    requests = 20
    barrier = threading.Barrier(requests)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def post() -> None:
        from django.db import connection

        try:
            barrier.wait(timeout=10)
            statuses.append(signed_in().post(dispatch_url(campaign)).status_code)
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
    assert statuses == [303] * requests
    assert len(job_queue()) == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PROCESSING
