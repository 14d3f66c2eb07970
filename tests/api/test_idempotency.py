"""The Idempotency-Key header on create-campaign and dispatch."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from api.models import IdempotencyRecord
from api.tasks import delete_expired_idempotency_records
from campaigns.models import Campaign
from tests.api.conftest import ApiClient, campaign_body

ROWS = [{"name": "Ada", "email": "ada@example.com"}]


@pytest.mark.django_db
def test_same_key_same_body_replays(api: ApiClient) -> None:
    first = api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "k-1"})
    second = api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "k-1"})

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json() == first.json()
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_same_key_other_body_is_rejected(api: ApiClient) -> None:
    api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "k-2"})

    response = api.post(
        "/api/v1/campaigns", campaign_body(ROWS, name="Other"), **{"Idempotency-Key": "k-2"}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_rejected_request_keeps_no_key(api: ApiClient) -> None:
    first = api.post(
        "/api/v1/campaigns", campaign_body([{"email": "bad"}]), **{"Idempotency-Key": "k-3"}
    )
    fixed = api.post(
        "/api/v1/campaigns",
        campaign_body([{"email": "ada@example.com"}]),
        **{"Idempotency-Key": "k-3"},
    )

    # The rejected request did nothing, so the corrected one does the work.
    assert first.status_code == 422
    assert fixed.status_code == 201
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_expired_key_is_reused_freely(api: ApiClient) -> None:
    api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "k-4"})
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "k-4"})

    assert response.status_code == 201
    assert Campaign.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db
def test_sweep_deletes_only_expired_records(api: ApiClient) -> None:
    api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "old"})
    api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "new"})
    IdempotencyRecord.objects.filter(key="old").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    deleted = delete_expired_idempotency_records()

    assert deleted == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db
def test_keys_are_per_workspace(api: ApiClient, outsider_api: ApiClient) -> None:
    api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "shared"})

    response = outsider_api.post(
        "/api/v1/campaigns", campaign_body(ROWS, name="Theirs"), **{"Idempotency-Key": "shared"}
    )

    assert response.status_code == 201
    assert Campaign.objects.count() == 2


@pytest.mark.django_db
def test_dispatch_key_replays_first_response(api: ApiClient, make_campaign: Any) -> None:
    campaign = make_campaign()
    url = f"/api/v1/campaigns/{campaign.pk}/dispatch"

    first = api.post(url, **{"Idempotency-Key": "d-1"})
    second = api.post(url, **{"Idempotency-Key": "d-1"})
    without_key = api.post(url)
    other_campaign = api.post(
        f"/api/v1/campaigns/{make_campaign(name='B').pk}/dispatch", **{"Idempotency-Key": "d-1"}
    )

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.json() == first.json()
    assert without_key.status_code == 409
    assert other_campaign.status_code == 422
    assert other_campaign.json()["code"] == "idempotency_key_reused"
    assert campaign.audit_events.filter(action="dispatched").count() == 1


@pytest.mark.django_db
def test_key_too_long_is_422(api: ApiClient) -> None:
    response = api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "k" * 300})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_invalid"
    assert not Campaign.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_same_key_creates_once(api: ApiClient) -> None:
    barrier = threading.Barrier(2)
    responses: list[Any] = []
    lock = threading.Lock()

    def send() -> None:
        client = ApiClient(api.token, Client())
        barrier.wait()
        try:
            response = client.post(
                "/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "race"}
            )
            with lock:
                responses.append(response)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Campaign.objects.count() == 1
    statuses = sorted(response.status_code for response in responses)
    assert statuses in ([201, 201], [201, 409])
    created = [response.json() for response in responses if response.status_code == 201]
    assert all(body == created[0] for body in created)
    conflicts = [response.json() for response in responses if response.status_code == 409]
    assert all(body["code"] == "idempotency_key_in_progress" for body in conflicts)


@pytest.mark.django_db(transaction=True)
def test_waiting_request_gets_409_after_timeout(api: ApiClient, settings: Any) -> None:
    """A request blocked on an uncommitted key gives up after API_IDEMPOTENCY_WAIT_SECONDS."""
    from django.db import connections

    from accounts.models import Workspace

    settings.API_IDEMPOTENCY_WAIT_SECONDS = 0.2
    workspace = Workspace.objects.get(memberships__user__username="operator")
    holder = connections.create_connection("default")
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {IdempotencyRecord._meta.db_table} "
                "(workspace_id, key, request_hash, response_status, response_body, "
                "created_at, expires_at) VALUES (%s, 'held', '', 0, 'null', now(), "
                "now() + interval '1 hour')",
                [workspace.pk],
            )
        response = api.post("/api/v1/campaigns", campaign_body(ROWS), **{"Idempotency-Key": "held"})
    finally:
        holder.rollback()
        holder.close()

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"
    assert not Campaign.objects.exists()
