"""The SMS providers: the webhook against an HTTP server on loopback, Twilio at its HTTP client."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from twilio.http import HttpClient
from twilio.http.response import Response

from dispatch.providers import (
    Delivery,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
    TwilioSmsProvider,
    WebhookSmsProvider,
)
from tests.servers import free_port

SECRET = "webhook-test-secret"


def delivery(message: OutboundMessage | None = None) -> Delivery:
    return Delivery(
        campaign_id=5,
        recipient_id=92,
        attempt=2,
        name="Grace Hopper",
        email="",
        phone_number="+12025550143",
        idempotency_key="campaign-5-recipient-92",
        message=message
        or OutboundMessage(channel="sms", to="+12025550143", text="Hi Grace, 20% off today"),
    )


@dataclass
class Gateway:
    """The test gateway's reply, and the requests it received."""

    status: int = 200
    body: bytes = b'{"id": "gw-123"}'
    delay: threading.Event | None = None
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, str]]:
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.requests.append((dict(self.headers.items()), self.rfile.read(length)))
            if state.delay is not None:
                # Holds the reply until the test releases it, past the client's timeout.
                state.delay.wait(timeout=10)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/sms"
    finally:
        if state.delay is not None:
            state.delay.set()
        server.shutdown()
        server.server_close()
        thread.join()


def webhook(url: str, timeout: float = 5.0) -> WebhookSmsProvider:
    return WebhookSmsProvider(url=url, secret=SECRET, timeout=timeout)


def test_webhook_posts_signed_json(gateway: tuple[Gateway, str]) -> None:
    state, url = gateway

    message_id = webhook(url).deliver(delivery())

    assert message_id == "gw-123"
    assert len(state.requests) == 1
    headers, body = state.requests[0]
    assert json.loads(body) == {
        "to": "+12025550143",
        "text": "Hi Grace, 20% off today",
        "idempotency_key": "campaign-5-recipient-92",
        "campaign_id": 5,
        "recipient_id": 92,
    }
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == f"sha256={expected}"
    assert headers["Idempotency-Key"] == "campaign-5-recipient-92"
    assert headers["Content-Type"] == "application/json"


def test_webhook_without_id_generates_one(gateway: tuple[Gateway, str]) -> None:
    state, url = gateway
    state.status = 202
    state.body = b"accepted"

    message_id = webhook(url).deliver(delivery())

    assert message_id.startswith("webhook-")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_webhook_retryable_status_is_transient(gateway: tuple[Gateway, str], status: int) -> None:
    state, url = gateway
    state.status = status
    state.body = b'{"error": "busy"}'

    with pytest.raises(TransientDeliveryError, match=f"HTTP {status}"):
        webhook(url).deliver(delivery())


@pytest.mark.parametrize("status", [400, 404])
def test_webhook_client_error_is_permanent(gateway: tuple[Gateway, str], status: int) -> None:
    state, url = gateway
    state.status = status
    state.body = b'{"error": "invalid number"}' + b"x" * 500

    with pytest.raises(PermanentDeliveryError) as raised:
        webhook(url).deliver(delivery())

    reason = str(raised.value)
    assert f"HTTP {status}" in reason
    assert '{"error": "invalid number"}' in reason
    # The reason keeps the body's first 200 characters only.
    assert reason.count("x") == 200 - len('{"error": "invalid number"}')


def test_webhook_slow_gateway_times_out(gateway: tuple[Gateway, str]) -> None:
    state, url = gateway
    state.delay = threading.Event()

    with pytest.raises(TransientDeliveryError, match="timed out"):
        webhook(url, timeout=0.3).deliver(delivery())


def test_webhook_refused_connection_is_transient() -> None:
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        webhook(f"http://127.0.0.1:{free_port()}/sms").deliver(delivery())


def test_webhook_rejects_bad_configuration() -> None:
    with pytest.raises(ImproperlyConfigured, match="SMS_WEBHOOK_URL"):
        WebhookSmsProvider(url="ftp://127.0.0.1/sms", secret=SECRET, timeout=1)
    with pytest.raises(ImproperlyConfigured, match="SMS_WEBHOOK_SECRET"):
        WebhookSmsProvider(url="http://127.0.0.1/sms", secret="", timeout=1)


def test_webhook_needs_sms_message() -> None:
    email = OutboundMessage(channel="email", to="ada@example.com", text="Hi")

    with pytest.raises(PermanentDeliveryError, match="no SMS message"):
        webhook("http://127.0.0.1:9/sms").deliver(delivery(email))


class RecordingTwilioClient(HttpClient):
    """Twilio's HTTP boundary: records each request and returns a canned response."""

    def __init__(self, status: int = 201, body: dict[str, Any] | None = None) -> None:
        super().__init__(logger=None, is_async=False, timeout=None)
        self.status = status
        self.body = body if body is not None else {"sid": "SM0123456789abcdef", "status": "queued"}
        self.error: Exception | None = None
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, uri: str, **kwargs: Any) -> Response:
        self.calls.append({"method": method, "uri": uri, **kwargs})
        if self.error is not None:
            raise self.error
        return Response(self.status, json.dumps(self.body))


def twilio(client: RecordingTwilioClient, **overrides: str) -> TwilioSmsProvider:
    options: dict[str, Any] = {
        "account_sid": "AC00000000000000000000000000000000",
        "auth_token": "token",
        "from_number": "+12025550100",
        "timeout": 5.0,
    }
    options.update(overrides)
    return TwilioSmsProvider(http_client=client, **options)


def test_twilio_creates_message_and_returns_sid() -> None:
    client = RecordingTwilioClient()

    sid = twilio(client).deliver(delivery())

    assert sid == "SM0123456789abcdef"
    assert len(client.calls) == 1
    call = client.calls[0]
    assert call["method"] == "POST"
    assert urllib.parse.urlsplit(call["uri"]).path == (
        "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json"
    )
    assert call["data"]["To"] == "+12025550143"
    assert call["data"]["Body"] == "Hi Grace, 20% off today"
    assert call["data"]["From"] == "+12025550100"
    assert call["auth"] == ("AC00000000000000000000000000000000", "token")


def test_twilio_messaging_service_replaces_sender() -> None:
    client = RecordingTwilioClient()

    twilio(client, from_number="", messaging_service_sid="MG000").deliver(delivery())

    data = client.calls[0]["data"]
    assert data["MessagingServiceSid"] == "MG000"
    assert "From" not in data


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (429, TransientDeliveryError),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
        (400, PermanentDeliveryError),
        (404, PermanentDeliveryError),
    ],
)
def test_twilio_error_status_classified(status: int, error_class: type[Exception]) -> None:
    client = RecordingTwilioClient(
        status=status,
        body={"code": 21211, "message": "Invalid 'To' Phone Number", "status": status},
    )

    with pytest.raises(error_class) as raised:
        twilio(client).deliver(delivery())

    assert f"HTTP {status}" in str(raised.value)
    assert "Invalid 'To' Phone Number" in str(raised.value)


def test_twilio_network_error_is_transient() -> None:
    client = RecordingTwilioClient()
    client.error = requests.ConnectionError("connection reset by peer")

    with pytest.raises(TransientDeliveryError, match="connection reset"):
        twilio(client).deliver(delivery())
