"""The activity log on the campaign page, its full page, and the read-only admin list."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from audit.models import Action, AuditEvent, record
from audit.views import EVENTS_ON_CAMPAIGN_PAGE, EVENTS_PER_PAGE
from campaigns.models import Campaign

pytestmark = pytest.mark.django_db

MakeCampaign = Callable[..., Campaign]
SCRIPT = "<script>alert(1)</script>"


def log_section(html: str) -> str:
    """Return the activity log's details element of the campaign page."""
    start = html.index("<details")
    return html[start : html.index("</details>", start)]


def add_events(campaign: Campaign, count: int) -> list[AuditEvent]:
    """Record `count` events one second apart, the last one newest."""
    start = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    added = []
    for number in range(count):
        event = record(campaign, Action.EDITED, None, f"event {number}")
        event.created_at = start + timedelta(seconds=number)
        event.save(update_fields=["created_at"])
        added.append(event)
    return added


def test_page_shows_log_escaped(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(name=f"Launch {SCRIPT}")
    user = get_user_model().objects.create_user(f"mallory{SCRIPT}", password="x-9-long-pass")
    record(campaign, Action.EDITED, user, f"detail {SCRIPT}")

    response = client.get(campaign.get_absolute_url())

    section = log_section(response.content.decode())
    assert response.status_code == 200
    assert "Activity log" in section
    assert SCRIPT not in section
    assert "mallory&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "detail &lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "Edited" in section


def test_page_shows_newest_first_in_utc(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    add_events(campaign, 2)

    section = log_section(client.get(campaign.get_absolute_url()).content.decode())

    assert section.index("event 1") < section.index("event 0")
    assert "2030-01-02 03:04:06 UTC" in section
    assert "system" in section
    assert "data-audit-show-all" not in section


def test_page_shows_twenty_and_links_all(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    add_events(campaign, EVENTS_ON_CAMPAIGN_PAGE + 1)

    section = log_section(client.get(campaign.get_absolute_url()).content.decode())

    assert section.count("data-audit-action=") == EVENTS_ON_CAMPAIGN_PAGE
    assert "event 0<" not in section
    assert f"event {EVENTS_ON_CAMPAIGN_PAGE}<" in section
    assert reverse("campaigns:audit", args=[campaign.pk]) in section


def test_page_has_no_inline_style_or_script(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    add_events(campaign, 1)

    section = log_section(client.get(campaign.get_absolute_url()).content.decode())

    assert "style=" not in section
    assert "<script" not in section
    assert re.search(r"\son[a-z]+=", section) is None


def test_full_log_is_paged(client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()
    add_events(campaign, EVENTS_PER_PAGE + 1)
    url = reverse("campaigns:audit", args=[campaign.pk])

    first = client.get(url).content.decode()
    second = client.get(url, {"page": 2}).content.decode()

    assert first.count("data-audit-action=") == EVENTS_PER_PAGE
    assert f"event {EVENTS_PER_PAGE}<" in first
    assert second.count("data-audit-action=") == 1
    assert "event 0<" in second


def test_full_log_of_missing_campaign(client: Client) -> None:
    assert client.get(reverse("campaigns:audit", args=[999999])).status_code == 404


def test_full_log_needs_sign_in(anonymous_client: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign()

    response = anonymous_client.get(reverse("campaigns:audit", args=[campaign.pk]))

    assert response.status_code == 302


@pytest.fixture
def admin_client_signed_in(db: None) -> Client:
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "x-9-long")
    admin_client = Client()
    admin_client.force_login(admin)
    return admin_client


def test_admin_list_loads(admin_client_signed_in: Client, make_campaign: MakeCampaign) -> None:
    campaign = make_campaign(name=f"Launch {SCRIPT}")
    record(campaign, Action.DISPATCHED, None, "by a test")

    response = admin_client_signed_in.get(reverse("admin:audit_auditevent_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "by a test" in html
    assert SCRIPT not in html
    assert reverse("admin:audit_auditevent_add") not in html


def test_admin_search_and_filter(
    admin_client_signed_in: Client, make_campaign: MakeCampaign, operator: Any
) -> None:
    record(make_campaign(name="Spring"), Action.PAUSED, operator, "spring event")
    record(make_campaign(name="Autumn"), Action.PAUSED, None, "autumn event")
    url = reverse("admin:audit_auditevent_changelist")

    by_name = admin_client_signed_in.get(url, {"q": "Spring"}).content.decode()
    by_actor = admin_client_signed_in.get(url, {"actor__id__exact": operator.pk}).content.decode()
    by_action = admin_client_signed_in.get(url, {"action": "dispatched"}).content.decode()

    assert "spring event" in by_name
    assert "autumn event" not in by_name
    assert "spring event" in by_actor
    assert "autumn event" not in by_actor
    assert "spring event" not in by_action


def test_admin_refuses_add_change_delete(
    admin_client_signed_in: Client, make_campaign: MakeCampaign
) -> None:
    event = record(make_campaign(), Action.EDITED, None, "kept")
    change_url = reverse("admin:audit_auditevent_change", args=[event.pk])

    add = admin_client_signed_in.post(reverse("admin:audit_auditevent_add"), {"detail": "x"})
    change = admin_client_signed_in.post(change_url, {"detail": "changed"})
    delete = admin_client_signed_in.post(
        reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}
    )
    view = admin_client_signed_in.get(change_url)

    assert add.status_code == 403
    assert change.status_code == 403
    assert delete.status_code == 403
    assert view.status_code == 200
    event.refresh_from_db()
    assert event.detail == "kept"
    assert AuditEvent.objects.count() == 1


def test_campaign_admin_links_events(
    admin_client_signed_in: Client, make_campaign: MakeCampaign
) -> None:
    campaign = make_campaign()
    record(campaign, Action.EDITED, None, "this campaign")
    record(make_campaign(name="Other"), Action.EDITED, None, "another campaign")
    link = f"{reverse('admin:audit_auditevent_changelist')}?campaign__id__exact={campaign.pk}"

    page = admin_client_signed_in.get(
        reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    )
    listed = admin_client_signed_in.get(link)

    assert link in page.content.decode()
    assert listed.status_code == 200
    assert "this campaign" in listed.content.decode()
    assert "another campaign" not in listed.content.decode()
