"""An SMTP server for tests: aiosmtpd on a loopback port that records what it receives.

Tests that need it take the `smtp_sink` fixture (tests/conftest.py), which
points the "default" and "sink" mailers at it.
"""

from __future__ import annotations

import threading

from aiosmtpd.smtp import SMTP, Envelope, Session

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class RecordingHandler:
    """Accepts every message and keeps its raw bytes, or replies with chosen codes.

    `rcpt_reply` and `data_reply` reply to every RCPT or DATA command while set.
    `rcpt_replies` holds, per recipient address, replies to give to its next
    RCPT commands, one each, before it is accepted.
    """

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.rcpt_reply = ""
        self.data_reply = ""
        self.rcpt_replies: dict[str, list[str]] = {}
        # The server runs in its own thread; tests read from theirs.
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        with self._lock:
            queued = self.rcpt_replies.get(address.lower())
            if queued:
                return queued.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        assert isinstance(envelope.content, bytes)
        with self._lock:
            self.messages.append(envelope.content)
        return "250 Message accepted"
