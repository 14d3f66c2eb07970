"""The CSV export of a campaign's recipients, requested through Django's AsyncClient.

The view reads each chunk in a worker thread that closes its database
connection afterwards, so these tests commit their rows
(`django_db(transaction=True)`) rather than run inside one open transaction.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from django.http import HttpResponseBase, StreamingHttpResponse
from django.test import AsyncClient, Client
from django.urls import reverse

from campaigns import export
from campaigns.models import Campaign, Recipient
from dispatch import claims
from tests.factories import signed_in_async_client
from tests.outcomes import claim, move_to_status, set_outcome

MakeCampaign = Callable[..., Campaign]

pytestmark = pytest.mark.django_db(transaction=True)

HEADER = [
    "name",
    "email",
    "phone",
    "status",
    "channel",
    "failure_reason",
    "attempts",
    "processed_at",
    "next_attempt_at",
    "claimed_at",
]


def export_url(campaign_id: int) -> str:
    return reverse("campaigns:export", args=[campaign_id])


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on a new event loop in a thread of its own.

    Sync Playwright leaves an event loop marked as running in the main
    thread once a browser test has run, and asgiref's async_to_sync rejects
    that thread.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def fetch(client: AsyncClient, url: str) -> tuple[StreamingHttpResponse, list[bytes]]:
    """Request `url` and read the streamed body chunk by chunk."""
    response = await client.get(url)
    assert isinstance(response, StreamingHttpResponse), type(response)
    chunks = [bytes(chunk) async for chunk in response.streaming_content]
    return response, chunks


def download(campaign_id: int) -> tuple[StreamingHttpResponse, list[bytes]]:
    return run(fetch(signed_in_async_client(), export_url(campaign_id)))


def parse(chunks: list[bytes]) -> list[list[str]]:
    text = b"".join(chunks).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def test_export_lists_recipients(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(name="Spring launch")

    response, chunks = download(campaign.pk)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="spring-launch-{campaign.pk}-recipients.csv"'
    )
    assert parse(chunks) == [
        HEADER,
        ["Ada", "ada@example.com", "", "queued", "", "", "0", "", "", ""],
        ["Grace", "", "+12025550101", "queued", "", "", "0", "", "", ""],
        ["Alan", "alan@example.com", "+12025550102", "queued", "", "", "0", "", "", ""],
    ]


def test_export_streams_async_chunks(
    make_campaign: MakeCampaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"email": f"r{number}@example.com"} for number in range(5)]
    campaign = make_campaign(recipients=rows)
    monkeypatch.setattr(export, "EXPORT_CHUNK_SIZE", 2)

    response, chunks = download(campaign.pk)

    # An async iterator, which uvicorn sends chunk by chunk; a synchronous one
    # would be read whole under ASGI before the first byte goes out.
    assert response.streaming
    assert response.is_async
    # The header, then chunks of 2, 2 and 1 recipients.
    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 2, 2, 1]
    emails = [row[1] for row in parse(chunks)[1:]]
    assert emails == [f"r{number}@example.com" for number in range(5)]


def test_export_full_last_chunk(
    make_campaign: MakeCampaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"email": f"r{number}@example.com"} for number in range(4)]
    campaign = make_campaign(recipients=rows)
    monkeypatch.setattr(export, "EXPORT_CHUNK_SIZE", 2)

    _response, chunks = download(campaign.pk)

    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 2, 2]
    assert len(parse(chunks)) == 5


def test_export_skips_other_campaigns(
    make_campaign: MakeCampaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = make_campaign(name="Before", recipients=[{"email": "before@example.com"}])
    campaign = make_campaign(recipients=[{"email": "a@example.com"}, {"email": "b@example.com"}])
    make_campaign(name="After", recipients=[{"email": "after@example.com"}])
    monkeypatch.setattr(export, "EXPORT_CHUNK_SIZE", 1)

    _response, chunks = download(campaign.pk)

    assert [row[1] for row in parse(chunks)[1:]] == ["a@example.com", "b@example.com"]
    assert before.recipients.count() == 1


def test_export_delivery_outcomes(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.PROCESSING)
    ada, grace, alan = campaign.recipients.order_by("id")
    assert set_outcome(ada, Recipient.Status.SENT)
    assert set_outcome(grace, Recipient.Status.FAILED, reason='=HYPERLINK("x") rejected')
    assert claim(alan)
    processed = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    Recipient.objects.filter(pk=ada.pk).update(processed_at=processed)
    alan.refresh_from_db()
    assert alan.claimed_at is not None

    _response, chunks = download(campaign.pk)

    rows = {row[0]: row for row in parse(chunks)[1:]}
    assert rows["Ada"][3:8] == ["sent", "", "", "1", "2026-03-01T12:30:05.123Z"]
    assert rows["Grace"][3:7] == ["failed", "", '\'=HYPERLINK("x") rejected', "1"]
    assert rows["Grace"][7].endswith("Z")
    assert rows["Alan"][3] == "in_flight"
    assert rows["Alan"][9] == export.format_time(alan.claimed_at)


def test_export_shows_channel(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    assert campaign.start()
    claims.claim_batch(campaign.pk, 10, lease_seconds=60)

    _response, chunks = download(campaign.pk)

    rows = {row[0]: row[4] for row in parse(chunks)[1:]}
    assert rows == {"Ada": "email", "Grace": "sms", "Alan": "email"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("Ada", "Ada"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralize_formula(value: str, expected: str) -> None:
    assert export.neutralize_formula(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+12025550101", "+12025550101"),
        ("12025550101", "12025550101"),
        ("+1202555010a", "'+1202555010a"),
        ("+", "'+"),
        ("-12025550101", "'-12025550101"),
        ("", ""),
    ],
)
def test_format_phone(value: str, expected: str) -> None:
    assert export.format_phone(value) == expected


def test_export_neutralizes_stored_values(make_campaign: MakeCampaign) -> None:
    # The model normalizes what it saves, so these go in through update().
    campaign = make_campaign(recipients=[{"email": "x@example.com"}])
    campaign.recipients.update(name="=cmd|' /C calc'!A0", email="@evil@example.com")

    _response, chunks = download(campaign.pk)

    row = parse(chunks)[1]
    assert row[0] == "'=cmd|' /C calc'!A0"
    assert row[1] == "'@evil@example.com"


def test_export_non_ascii_names(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(
        name="Frühjahr 2026 — Ñandú",
        recipients=[{"name": "Zoë Ørsted", "email": "zoe@example.com"}],
    )

    response, chunks = download(campaign.pk)

    assert chunks[0].startswith(b"\xef\xbb\xbf")
    assert parse(chunks)[1][0] == "Zoë Ørsted"
    assert response["Content-Disposition"] == (
        f'attachment; filename="fruhjahr-2026-nandu-{campaign.pk}-recipients.csv"'
    )


def test_export_file_name_fallback(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(name="東京 !!!", recipients=[])

    response, chunks = download(campaign.pk)

    assert response["Content-Disposition"] == (
        f'attachment; filename="campaign-{campaign.pk}-recipients.csv"'
    )
    assert parse(chunks) == [HEADER]


def test_export_file_name_length(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(name="word " * 40, recipients=[])

    name = export.file_name(campaign)

    slug = name.removesuffix(f"-{campaign.pk}-recipients.csv")
    assert len(slug) <= export.FILE_NAME_SLUG_MAX_LENGTH
    assert not slug.endswith("-")
    assert slug.startswith("word-word")


@pytest.mark.parametrize("status", ["pending", "processing", "completed", "cancelled"])
def test_export_any_status(make_campaign: MakeCampaign, status: str) -> None:
    campaign = make_campaign()
    move_to_status(campaign, status)

    response, chunks = download(campaign.pk)

    assert response.status_code == 200
    assert len(parse(chunks)) == 4


def test_export_unknown_not_found() -> None:
    response: HttpResponseBase = run(signed_in_async_client().get(export_url(999999)))

    assert response.status_code == 404


def test_export_post_not_allowed(make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response: HttpResponseBase = run(signed_in_async_client().post(export_url(campaign.pk)))

    assert response.status_code == 405


def test_page_links_export(make_campaign: MakeCampaign, client: Client) -> None:
    campaign = make_campaign()
    move_to_status(campaign, Campaign.Status.COMPLETED)

    html = client.get(campaign.get_absolute_url()).content.decode()

    assert f'href="{export_url(campaign.pk)}"' in html
    assert ">Export CSV</a>" in html
