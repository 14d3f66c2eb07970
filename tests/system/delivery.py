"""Dispatch a campaign from a browser test, with deliveries that the test lets through.

The in-process Celery worker (tests/system/conftest.py) builds its provider
from DELIVERY_PROVIDER when a task runs, so `GatedProvider` in the worker's
delivery threads and the test share the module-level `gate`. Each delivery
waits for a permit from the test, so a test decides exactly how many
outcomes exist before it acts: the middle of a dispatch is a state the test
sets up, not a moment it hopes to catch.
"""

from __future__ import annotations

import threading
from functools import partial

from django.db import transaction

from campaigns.models import Campaign, Recipient
from dispatch.providers import Delivery, PermanentDeliveryError, SimulatedProvider
from dispatch.tasks import dispatch_campaign_later
from tests.servers import wait_until

# A delivery that gets no permit within this many seconds fails for good, so
# that a test that forgot to open the gate ends instead of hanging.
PERMIT_TIMEOUT_SECONDS = 120.0


class DeliveryGate:
    """Permits for deliveries: closed at first, then `allow(n)` lets n more through."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._permits = 0
        self._open = False

    def reset(self) -> None:
        with self._condition:
            self._permits = 0
            self._open = False

    def allow(self, count: int) -> None:
        """Let `count` more deliveries through."""
        with self._condition:
            self._permits += count
            self._condition.notify_all()

    def open(self) -> None:
        """Let every delivery through, now and later."""
        with self._condition:
            self._open = True
            self._condition.notify_all()

    def take_permit(self, timeout: float) -> bool:
        """Block until a delivery may go; returns False after `timeout` seconds without a permit."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._open or self._permits > 0, timeout):
                return False
            if not self._open:
                self._permits -= 1
            return True


gate = DeliveryGate()


class GatedProvider:
    """Waits for a permit from `gate`, then delivers like the simulated provider.

    The simulated provider keeps its rules: addresses at
    DELIVERY_FAIL_EMAIL_DOMAIN fail permanently. The test settings give it
    no delay.
    """

    name = "gated"

    def __init__(self, inner: SimulatedProvider) -> None:
        self.inner = inner

    @classmethod
    def from_settings(cls) -> GatedProvider:
        return cls(SimulatedProvider.from_settings())

    def deliver(self, delivery: Delivery) -> str:
        if not gate.take_permit(PERMIT_TIMEOUT_SECONDS):
            raise PermanentDeliveryError(
                f"not delivered: the test gave no permit within {PERMIT_TIMEOUT_SECONDS:.0f} s"
            )
        return self.inner.deliver(delivery)


def start_dispatch(campaign: Campaign) -> None:
    """Start the campaign and wake the worker, as the Dispatch button does."""
    with transaction.atomic():
        assert campaign.start(), f"campaign {campaign.pk} did not start"
        transaction.on_commit(partial(dispatch_campaign_later, campaign.pk))


def wait_for_processed(campaign: Campaign, count: int, timeout: float = 30.0) -> None:
    """Wait until at least `count` of the campaign's recipients have a final status."""

    def processed() -> bool:
        return campaign.progress().processed >= count

    wait_until(processed, timeout, f"fewer than {count} recipients of {campaign} processed")


def wait_for_status(campaign: Campaign, status: str, timeout: float = 30.0) -> None:
    def reached() -> bool:
        return Campaign.objects.filter(pk=campaign.pk, status=status).exists()

    wait_until(reached, timeout, f"{campaign} did not become {status}")


def rows_in_database(campaign: Campaign) -> dict[int, tuple[str, int]]:
    """Each recipient's status and version, by id, as the database has them now."""
    rows = Recipient.objects.filter(campaign=campaign).values_list("id", "status", "version")
    return {pk: (status, version) for pk, status, version in rows}
