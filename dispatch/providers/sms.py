"""SMS through an HTTP webhook of your own gateway, or through Twilio."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from dispatch.providers.base import (
    Delivery,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)

# Characters of an error response's body kept in the failure reason.
ERROR_BODY_CHARACTERS = 200


def _sms_message(delivery: Delivery) -> OutboundMessage:
    message = delivery.message
    if message is None or message.channel != "sms":
        raise PermanentDeliveryError("no SMS message to send (the SMS provider needs one)")
    if not message.to:
        raise PermanentDeliveryError("missing phone number")
    return message


def _is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


class _RejectRedirects(urllib.request.HTTPRedirectHandler):
    """Turns a redirect into an HTTPError, because urllib would resend a POST as a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookSmsProvider:
    """POSTs each SMS as JSON to a gateway of your own, with an HMAC-signed body.

    The body is `{"to", "text", "idempotency_key", "campaign_id",
    "recipient_id"}`. The `X-Signature` header is `sha256=` and the hex
    HMAC-SHA256 of the exact body bytes under the shared secret, and the
    `Idempotency-Key` header repeats the body's key, which stays the same on
    every attempt. A 2xx response is success, and its JSON "id" is the message
    id. 429, 5xx, timeouts and connection errors are transient. Other
    statuses, redirects included, are permanent.
    """

    name = "sms-webhook"

    def __init__(self, *, url: str, secret: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImproperlyConfigured(
                f"SMS_WEBHOOK_URL={url!r} is not an http or https URL; set it to the "
                "gateway's endpoint, such as https://sms.example.com/messages."
            )
        if not secret:
            raise ImproperlyConfigured(
                "SMS_WEBHOOK_SECRET is empty; set it to the secret that the gateway "
                "uses to check the X-Signature header."
            )
        if timeout <= 0:
            raise ImproperlyConfigured(
                f"invalid SMS webhook timeout {timeout} seconds: need a value above 0"
            )
        self.url = url
        self.secret = secret.encode()
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_RejectRedirects())

    @classmethod
    def from_settings(cls) -> WebhookSmsProvider:
        return cls(
            url=settings.SMS_WEBHOOK_URL,
            secret=settings.SMS_WEBHOOK_SECRET,
            timeout=settings.SMS_WEBHOOK_TIMEOUT_SECONDS,
        )

    def sign(self, body: bytes) -> str:
        """Return the X-Signature header value for `body`."""
        return "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def deliver(self, delivery: Delivery) -> str:
        message = _sms_message(delivery)
        body = json.dumps(
            {
                "to": message.to,
                "text": message.text,
                "idempotency_key": delivery.idempotency_key,
                "campaign_id": delivery.campaign_id,
                "recipient_id": delivery.recipient_id,
            },
            separators=(",", ":"),
        ).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Signature": self.sign(body),
                "Idempotency-Key": delivery.idempotency_key,
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response_body = response.read()
        except urllib.error.HTTPError as exc:
            raise self._status_error(exc) from exc
        except urllib.error.URLError as exc:
            # Connection refused, DNS failures, and timeouts while connecting.
            raise TransientDeliveryError(f"SMS webhook unreachable: {exc.reason}") from exc
        except TimeoutError as exc:
            raise TransientDeliveryError(
                f"SMS webhook timed out after {self.timeout:g} seconds"
            ) from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise TransientDeliveryError(
                f"SMS webhook connection failed: {type(exc).__name__}: {exc}"
            ) from exc
        return _message_id(response_body)

    def _status_error(
        self, exc: urllib.error.HTTPError
    ) -> TransientDeliveryError | PermanentDeliveryError:
        try:
            excerpt = exc.read(ERROR_BODY_CHARACTERS * 4).decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException):
            excerpt = ""
        excerpt = excerpt[:ERROR_BODY_CHARACTERS]
        reason = f"SMS webhook returned HTTP {exc.code}: {excerpt}".rstrip(": ")
        if _is_transient_status(exc.code):
            return TransientDeliveryError(reason)
        return PermanentDeliveryError(reason)


def _message_id(response_body: bytes) -> str:
    """Return the gateway's message id from a 2xx body, or a generated one."""
    try:
        data = json.loads(response_body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("id"), str | int) and data["id"] != "":
        return str(data["id"])
    return f"webhook-{uuid.uuid4()}"


class TwilioSmsProvider:
    """Sends each SMS through Twilio's Messages API with the official library.

    Messages go from `from_number`, or through the Messaging Service
    `messaging_service_sid` when that is set. Returns the message SID. API
    errors with status 429 or 5xx and network failures are transient, other
    API errors permanent.
    """

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str = "",
        messaging_service_sid: str = "",
        timeout: float,
        http_client: HttpClient | None = None,
    ) -> None:
        if not account_sid or not auth_token:
            raise ImproperlyConfigured(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set to send SMS "
                "through Twilio."
            )
        if not from_number and not messaging_service_sid:
            raise ImproperlyConfigured(
                "Set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID to send SMS through Twilio."
            )
        if timeout <= 0:
            raise ImproperlyConfigured(
                f"invalid Twilio timeout {timeout} seconds: need a value above 0"
            )
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.client = Client(
            account_sid,
            auth_token,
            http_client=http_client or TwilioHttpClient(timeout=timeout),
        )

    @classmethod
    def from_settings(cls) -> TwilioSmsProvider:
        return cls(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=settings.TWILIO_FROM_NUMBER,
            messaging_service_sid=settings.TWILIO_MESSAGING_SERVICE_SID,
            timeout=settings.TWILIO_TIMEOUT_SECONDS,
        )

    def deliver(self, delivery: Delivery) -> str:
        message = _sms_message(delivery)
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number}
        )
        try:
            created = self.client.messages.create(to=message.to, body=message.text, **sender)
        except TwilioRestException as exc:
            reason = f"Twilio returned HTTP {exc.status}"
            if exc.code:
                reason += f", error {exc.code}"
            if exc.msg:
                reason += f": {exc.msg}"
            if _is_transient_status(exc.status):
                raise TransientDeliveryError(reason) from exc
            raise PermanentDeliveryError(reason) from exc
        except requests.RequestException as exc:
            raise TransientDeliveryError(
                f"Twilio request failed: {type(exc).__name__}: {exc}"
            ) from exc
        except TwilioException as exc:
            raise PermanentDeliveryError(f"Twilio client error: {exc}") from exc
        sid: str = created.sid
        return sid
