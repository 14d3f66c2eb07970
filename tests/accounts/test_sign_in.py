"""Signing in, signing out, throttling, and which pages need a signed-in user."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts import throttle
from campaigns.models import Campaign
from suppressions.tokens import make_token
from tests.factories import OPERATOR_PASSWORD, operator_workspace
from tests.servers import free_port
from tests.smtp import RecordingHandler

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("accounts:login")


@pytest.fixture(autouse=True)
def clear_counters(redis_client: redis.Redis) -> Iterator[None]:
    """Delete this run's failure counters before and after each test."""

    def clear() -> None:
        pattern = f"{settings.LIVE_UPDATES_CHANNEL_PREFIX}:login-failures:*"
        keys = list(redis_client.scan_iter(match=pattern))
        if keys:
            redis_client.delete(*keys)

    clear()
    yield
    clear()


def sign_in(client: Client, username: str, password: str, address: str = "192.0.2.10") -> Any:
    return client.post(LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


def page_text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.parametrize(
    "url",
    [
        reverse("campaigns:index"),
        reverse("campaigns:create"),
        reverse("suppressions:index"),
        reverse("accounts:password_change"),
    ],
)
def test_pages_redirect_to_sign_in(anonymous_client: Client, url: str) -> None:
    response = anonymous_client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={url}"


def test_actions_redirect_without_change(
    anonymous_client: Client, make_campaign: Callable[..., Campaign]
) -> None:
    campaign = make_campaign()

    response = anonymous_client.post(reverse("campaigns:dispatch", args=[campaign.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PENDING


def test_unsubscribe_needs_no_sign_in(anonymous_client: Client) -> None:
    token = make_token(1, 2, "ada@example.com", workspace_id=operator_workspace().pk)

    page = anonymous_client.get(reverse("suppressions:unsubscribe", args=[token]))
    one_click = anonymous_client.post(
        reverse("suppressions:one_click", args=[token]), {"List-Unsubscribe": "One-Click"}
    )

    assert page.status_code == 200
    assert one_click.status_code == 200


def test_sign_in_returns_to_next_page(anonymous_client: Client, operator: Any) -> None:
    next_url = reverse("suppressions:index")

    response = anonymous_client.post(
        f"{LOGIN_URL}?next={next_url}",
        {"username": "operator", "password": OPERATOR_PASSWORD, "next": next_url},
    )

    assert response.status_code == 302
    assert response["Location"] == next_url
    assert anonymous_client.get(next_url).status_code == 200


def test_wrong_password_is_form_error(anonymous_client: Client, operator: Any) -> None:
    response = sign_in(anonymous_client, "operator", "wrong password")

    assert response.status_code == 200
    assert "Please enter a correct username and password." in page_text(response)
    assert anonymous_client.get(reverse("campaigns:index")).status_code == 302


def test_sign_out_needs_post(client: Client) -> None:
    assert client.get(reverse("accounts:logout")).status_code == 405

    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    assert client.get(reverse("campaigns:index")).status_code == 302


def test_pages_show_user_and_sign_out(client: Client) -> None:
    html = client.get(reverse("campaigns:index")).content.decode()

    assert ">operator</a>" in html
    assert f'action="{reverse("accounts:logout")}"' in html


def test_account_locked_after_failures(
    anonymous_client: Client, operator: Any, settings: Any
) -> None:
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    for attempt in range(3):
        # Each failure comes from another address, so only the account's limit applies.
        sign_in(anonymous_client, "operator", "wrong", address=f"192.0.2.{attempt}")

    response = sign_in(anonymous_client, "operator", OPERATOR_PASSWORD, address="198.51.100.7")

    text = page_text(response)
    assert response.status_code == 200
    assert "Too many failed sign-ins for this account. Try again in 15 minutes" in text
    assert anonymous_client.get(reverse("campaigns:index")).status_code == 302


def test_address_locked_after_failures(
    anonymous_client: Client, operator: Any, settings: Any
) -> None:
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    sign_in(anonymous_client, "someone", "wrong")
    sign_in(anonymous_client, "someone-else", "wrong")

    locked = sign_in(anonymous_client, "operator", OPERATOR_PASSWORD)
    elsewhere = sign_in(Client(), "operator", OPERATOR_PASSWORD, address="198.51.100.7")

    assert "Too many failed sign-ins from your network address." in page_text(locked)
    assert elsewhere.status_code == 302


def test_success_clears_account_failures(
    anonymous_client: Client, operator: Any, settings: Any
) -> None:
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    sign_in(anonymous_client, "operator", "wrong", address="192.0.2.1")
    sign_in(anonymous_client, "operator", "wrong", address="192.0.2.2")
    assert sign_in(Client(), "operator", OPERATOR_PASSWORD).status_code == 302

    sign_in(anonymous_client, "operator", "wrong", address="192.0.2.3")
    sign_in(anonymous_client, "operator", "wrong", address="192.0.2.4")

    assert throttle.lockout("operator", "192.0.2.99") is None
    assert sign_in(Client(), "operator", OPERATOR_PASSWORD).status_code == 302


def test_lockout_counts_down_from_first_failure(
    operator: Any, settings: Any, redis_client: redis.Redis
) -> None:
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 2
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 600
    throttle.record_failure("Operator ", "192.0.2.1")
    throttle.record_failure("operator", "192.0.2.2")

    locked = throttle.lockout("OPERATOR", "192.0.2.3")

    assert locked is not None
    assert locked.scope == "account"
    assert 590 <= locked.seconds <= 600
    assert "Try again in 10 minutes" in locked.message


def test_sign_in_works_while_redis_is_down(
    anonymous_client: Client, operator: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = sign_in(anonymous_client, "operator", OPERATOR_PASSWORD)

    assert response.status_code == 302
    assert "login throttling unavailable" in caplog.text


def test_password_change(client: Client, operator: Any) -> None:
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": OPERATOR_PASSWORD,
            "new_password1": "a-new-long-passphrase-77",
            "new_password2": "a-new-long-passphrase-77",
        },
    )

    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.check_password("a-new-long-passphrase-77")


def test_password_reset_by_email(
    anonymous_client: Client, operator: Any, smtp_sink: RecordingHandler
) -> None:
    response = anonymous_client.post(
        reverse("accounts:password_reset"), {"email": "operator@example.com"}
    )
    assert response.status_code == 302
    [raw] = smtp_sink.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Reset your Campaign Dispatcher password"
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", message.get_content())
    assert link is not None

    form = anonymous_client.get(link.group(1), follow=True)
    done = anonymous_client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "reset-passphrase-2931", "new_password2": "reset-passphrase-2931"},
    )

    assert done.status_code == 302
    operator.refresh_from_db()
    assert operator.check_password("reset-passphrase-2931")
