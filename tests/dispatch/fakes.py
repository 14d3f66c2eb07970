"""Fake providers for tests, which stand in for the outside world, and engine settings."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from dispatch.engine import EngineSettings
from dispatch.providers import Delivery, PermanentDeliveryError, TransientDeliveryError

# Small batches and quick flushes, so that a few recipients exercise several
# claims and flushes; retries are due at once.
TEST_ENGINE_SETTINGS = EngineSettings(
    concurrency=4,
    batch_size=2,
    lease_seconds=60,
    flush_interval=0.05,
    flush_size=3,
    max_attempts=3,
    retry_base_seconds=0,
    retry_max_seconds=0,
    retry_wait_seconds=1,
)


def engine_settings(**changes: Any) -> EngineSettings:
    """TEST_ENGINE_SETTINGS with some values changed."""
    return dataclasses.replace(TEST_ENGINE_SETTINGS, **changes)


class RecordingProvider:
    """Delivers instantly and records every delivery; fails for chosen emails.

    `permanent` and `transient` map an email address to the error message to
    raise; a transient entry fails only the first `transient_times` attempts.
    """

    name = "recording"

    def __init__(
        self,
        permanent: dict[str, str] | None = None,
        transient: dict[str, str] | None = None,
        transient_times: int = 1,
        unexpected: dict[str, Exception] | None = None,
    ) -> None:
        self.deliveries: list[Delivery] = []
        self.permanent = permanent or {}
        self.transient = transient or {}
        self.transient_times = transient_times
        self.unexpected = unexpected or {}
        self._lock = threading.Lock()

    def deliver(self, delivery: Delivery) -> str:
        with self._lock:
            self.deliveries.append(delivery)
        if delivery.email in self.unexpected:
            raise self.unexpected[delivery.email]
        if delivery.email in self.permanent:
            raise PermanentDeliveryError(self.permanent[delivery.email])
        if delivery.email in self.transient and delivery.attempt <= self.transient_times:
            raise TransientDeliveryError(self.transient[delivery.email])
        return f"recorded-{delivery.recipient_id}-{delivery.attempt}"

    @property
    def recipient_ids(self) -> list[int]:
        return [d.recipient_id for d in self.deliveries]
