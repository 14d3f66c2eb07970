"""Creating campaigns and adding recipients through the API."""

from __future__ import annotations

from typing import Any

import pytest

from api.cursors import encode_cursor
from audit.models import AuditEvent
from campaigns.models import Campaign, Recipient
from tests.api.conftest import ApiClient, campaign_body
from tests.factories import operator_workspace

pytestmark = pytest.mark.django_db

ADA = {"name": "Ada", "email": "Ada@Example.COM"}
GRACE = {"name": "Grace", "phone_number": "+1 (202) 555-0101"}


def test_create_saves_campaign_and_rows(api: ApiClient) -> None:
    response = api.post("/api/v1/campaigns", campaign_body([ADA, GRACE]))

    assert response.status_code == 201, response.content
    body = response.json()
    campaign = Campaign.objects.get(pk=body["campaign"]["id"])
    assert campaign.workspace == operator_workspace()
    assert campaign.status == "pending"
    assert body["added"] == 2
    assert body["skipped"] == []
    assert body["campaign"]["progress"]["queued"] == 2
    stored = list(campaign.recipients.order_by("id").values_list("email", "phone_number"))
    assert stored == [("Ada@example.com", ""), ("", "+12025550101")]
    event = AuditEvent.objects.get(campaign=campaign)
    assert event.action == "created"
    assert event.actor_name == "operator"
    assert "through the API" in event.detail


def test_create_rejects_every_invalid_row(api: ApiClient) -> None:
    rows = [
        ADA,
        {"name": "Bad", "email": "not-an-address"},
        {"name": "Nobody"},
        {"name": "Twin", "email": "ada@example.com"},
        {"phone_number": "1.2E+10"},
    ]

    response = api.post("/api/v1/campaigns", campaign_body(rows))

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed"
    located = [(error["row"], error["field"]) for error in body["errors"]]
    assert located == [(1, "email"), (2, None), (3, "email"), (4, "phone_number")]
    assert "row 0" in body["errors"][2]["message"]
    assert "scientific notation" in body["errors"][3]["message"]
    assert not Campaign.objects.exists()


def test_create_skip_invalid_saves_valid_rows(api: ApiClient) -> None:
    rows = [ADA, {"name": "Bad", "email": "nope"}, GRACE]

    response = api.post("/api/v1/campaigns", campaign_body(rows, skip_invalid=True))

    assert response.status_code == 201
    body = response.json()
    assert body["added"] == 2
    assert [(error["row"], error["field"]) for error in body["skipped"]] == [(1, "email")]
    campaign = Campaign.objects.get(pk=body["campaign"]["id"])
    assert sorted(campaign.recipients.values_list("name", flat=True)) == ["Ada", "Grace"]


def test_create_reports_content_errors(api: ApiClient) -> None:
    body = campaign_body([ADA], name="  ", email_text="Hi {{ secret }}", skip_invalid=True)

    response = api.post("/api/v1/campaigns", body)

    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"name", "email_text"}
    assert all(error["row"] is None for error in response.json()["errors"])
    assert not Campaign.objects.exists()


def test_create_checks_body_schema(api: ApiClient) -> None:
    response = api.post("/api/v1/campaigns", {"recipients": [{"email": 5}]})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    fields = {(error["row"], error["field"]) for error in body["errors"]}
    assert (None, "name") in fields
    assert (0, "email") in fields


def test_create_rejects_malformed_json(api: ApiClient) -> None:
    response = api.client.post(
        "/api/v1/campaigns",
        data=b"{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "invalid_json"
    assert "not valid JSON" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (campaign_body([], email_text="x\udc00"), "email_text", "unpaired surrogate"),
        (campaign_body([{"name": "A\udc00", "email": "a@example.com"}]), "name", "surrogate"),
        (campaign_body([None]), None, "Each recipient must be an object"),
        (campaign_body(["ada@example.com"]), None, "Each recipient must be an object"),
        (campaign_body([], status="completed"), "status", "Extra inputs are not permitted"),
        (campaign_body([{"email": "a@example.com", "bogus": 1}]), "bogus", "Extra inputs"),
        (campaign_body([], prefer_sms="yes"), "prefer_sms", "valid boolean"),
    ],
)
def test_create_rejects_bad_body_values(
    api: ApiClient, body: dict[str, Any], field: str | None, message: str
) -> None:
    response = api.post("/api/v1/campaigns", body)

    assert response.status_code == 422
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert any(
        (error["field"] or "").endswith(field or "") and message in error["message"]
        for error in payload["errors"]
    ), payload["errors"]
    assert not Campaign.objects.exists()


def test_create_without_recipients(api: ApiClient) -> None:
    body = campaign_body([])
    del body["recipients"]

    response = api.post("/api/v1/campaigns", body)

    assert response.status_code == 201
    assert response.json()["added"] == 0


def test_create_limits_recipient_count(api: ApiClient, settings: Any) -> None:
    settings.API_MAX_RECIPIENTS_PER_REQUEST = 2
    rows = [{"email": f"r{index}@example.com"} for index in range(3)]

    response = api.post("/api/v1/campaigns", campaign_body(rows))

    assert response.status_code == 422
    assert response.json()["code"] == "too_many_recipients"
    assert not Campaign.objects.exists()


def test_create_limits_body_size(api: ApiClient, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 64 * 1024
    rows = [{"name": "x" * 190, "email": f"r{index}@example.com"} for index in range(400)]

    response = api.post("/api/v1/campaigns", campaign_body(rows))

    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "body_too_large"
    assert body["max_bytes"] == 64 * 1024
    assert not Campaign.objects.exists()


def test_add_recipients_to_pending(api: ApiClient, make_campaign: Any) -> None:
    campaign = make_campaign(recipients=[{"name": "Ada", "email": "ada@example.com"}])
    rows = [{"name": "Again", "email": "ADA@example.com"}, GRACE]

    rejected = api.post(f"/api/v1/campaigns/{campaign.pk}/recipients", {"recipients": rows})
    accepted = api.post(
        f"/api/v1/campaigns/{campaign.pk}/recipients", {"recipients": rows, "skip_invalid": True}
    )

    assert rejected.status_code == 422
    assert rejected.json()["errors"][0]["row"] == 0
    assert "already has" in rejected.json()["errors"][0]["message"]
    assert accepted.status_code == 201
    assert accepted.json()["added"] == 1
    assert campaign.recipients.count() == 2
    assert AuditEvent.objects.filter(campaign=campaign, action="recipient_added").count() == 1


def test_add_recipients_to_dispatched_is_409(api: ApiClient, make_campaign: Any) -> None:
    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(status="processing")

    response = api.post(f"/api/v1/campaigns/{campaign.pk}/recipients", {"recipients": [GRACE]})

    assert response.status_code == 409
    assert response.json()["code"] == "campaign_not_pending"
    assert response.json()["status"] == "processing"
    assert campaign.recipients.count() == 3


def test_get_campaign_with_progress(api: ApiClient, make_campaign: Any) -> None:
    campaign = make_campaign()
    Recipient.objects.filter(campaign=campaign, name="Ada").update(status="sent")

    response = api.get(f"/api/v1/campaigns/{campaign.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == campaign.pk
    assert body["progress"]["total"] == 3
    assert body["progress"]["sent"] == 1
    assert body["progress"]["queued"] == 2
    assert body["progress"]["percent"] == 33


def test_list_campaigns_pages_by_cursor(api: ApiClient, make_campaign: Any) -> None:
    campaigns = [make_campaign(name=f"C{index}") for index in range(5)]

    first = api.get("/api/v1/campaigns?limit=2").json()
    second = api.get(f"/api/v1/campaigns?limit=2&cursor={first['next_cursor']}").json()
    make_campaign(name="Newer")
    third = api.get(f"/api/v1/campaigns?limit=2&cursor={second['next_cursor']}").json()

    newest_first = [campaign.pk for campaign in reversed(campaigns)]
    assert [item["id"] for item in first["items"]] == newest_first[:2]
    assert [item["id"] for item in second["items"]] == newest_first[2:4]
    assert [item["id"] for item in third["items"]] == newest_first[4:]
    assert third["next_cursor"] is None


def test_list_recipients_filters_and_pages(api: ApiClient, make_campaign: Any) -> None:
    rows = [{"name": f"R{index}", "email": f"r{index}@example.com"} for index in range(5)]
    campaign = make_campaign(recipients=rows)
    ids = list(campaign.recipients.order_by("id").values_list("id", flat=True))
    Recipient.objects.filter(pk__in=ids[:2]).update(status="failed")
    url = f"/api/v1/campaigns/{campaign.pk}/recipients"

    first = api.get(f"{url}?limit=2").json()
    Recipient.objects.create(campaign=campaign, name="Late", email="late@example.com")
    second = api.get(f"{url}?limit=2&cursor={first['next_cursor']}").json()
    failed = api.get(f"{url}?status=failed").json()

    assert [item["id"] for item in first["items"]] == ids[:2]
    assert [item["id"] for item in second["items"]] == ids[2:4]
    assert [item["id"] for item in failed["items"]] == ids[:2]
    assert failed["next_cursor"] is None


def test_list_recipients_rejects_bad_input(api: ApiClient, make_campaign: Any) -> None:
    campaign = make_campaign()
    url = f"/api/v1/campaigns/{campaign.pk}/recipients"

    bad_status = api.get(f"{url}?status=lost")
    bad_cursor = api.get(f"{url}?cursor=zzz")
    campaign_cursor = api.get(f"{url}?cursor={encode_cursor('c', campaign.pk)}")

    assert bad_status.status_code == 422
    assert bad_status.json()["code"] == "validation_error"
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["code"] == "invalid_cursor"
    assert campaign_cursor.status_code == 422


def test_recipient_cursor_belongs_to_its_list(api: ApiClient, make_campaign: Any) -> None:
    first = make_campaign(name="First")
    second = make_campaign(name="Second")
    page = api.get(f"/api/v1/campaigns/{first.pk}/recipients?limit=1").json()
    cursor = page["next_cursor"]

    other_campaign = api.get(f"/api/v1/campaigns/{second.pk}/recipients?cursor={cursor}")
    other_filter = api.get(f"/api/v1/campaigns/{first.pk}/recipients?status=sent&cursor={cursor}")
    same_list = api.get(f"/api/v1/campaigns/{first.pk}/recipients?limit=1&cursor={cursor}")

    assert other_campaign.status_code == 422
    assert other_campaign.json()["code"] == "invalid_cursor"
    assert other_filter.status_code == 422
    assert same_list.status_code == 200


def test_attempts_of_recipient(api: ApiClient, make_campaign: Any) -> None:
    from django.utils import timezone

    from campaigns.models import DeliveryAttempt

    campaign = make_campaign()
    recipient = campaign.recipients.first()
    now = timezone.now()
    for number, outcome in [(1, "transient_error"), (2, "sent")]:
        DeliveryAttempt.objects.create(
            recipient=recipient,
            campaign=campaign,
            number=number,
            started_at=now,
            finished_at=now,
            outcome=outcome,
            error="timeout" if number == 1 else "",
        )

    response = api.get(f"/api/v1/campaigns/{campaign.pk}/recipients/{recipient.pk}/attempts")
    other = make_campaign(name="Other")
    mismatched = api.get(f"/api/v1/campaigns/{other.pk}/recipients/{recipient.pk}/attempts")

    assert response.status_code == 200
    assert [(item["number"], item["outcome"]) for item in response.json()] == [
        (1, "transient_error"),
        (2, "sent"),
    ]
    assert mismatched.status_code == 404
    assert mismatched.json()["code"] == "not_found"
