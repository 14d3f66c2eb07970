"""`suppress` with a source campaign that is deleted before or while the entry is added.

These tests commit, because PostgreSQL checks Django's foreign keys at
commit (they are DEFERRABLE INITIALLY DEFERRED). Inside a test's rolled-back
transaction a dangling campaign id would never be checked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, connections, transaction

from campaigns.models import Campaign
from suppressions.models import Suppression, SuppressionReason, suppress
from tests.factories import operator_workspace
from tests.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

UNSUBSCRIBED = SuppressionReason.UNSUBSCRIBED
WAIT_SECONDS = 10.0


@pytest.fixture
def other_session() -> Iterator[psycopg.Connection]:
    """A second PostgreSQL session on the test database, outside Django."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    session = psycopg.connect(**params)
    yield session
    session.close()


def blocked_by(backend_pid: int) -> bool:
    """Return whether some session waits for a lock that `backend_pid` holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
            [backend_pid],
        )
        row = cursor.fetchone()
    return row is not None and row[0] > 0


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start `work` in a thread with its own database connection; the dict gets its outcome."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_deleted_campaign_leaves_source_empty(make_campaign: Callable[..., Campaign]) -> None:
    campaign = make_campaign(recipients=[])
    campaign_id = campaign.pk
    campaign.delete()

    entry, created = suppress(
        email="ada@example.com",
        reason=UNSUBSCRIBED,
        campaign_id=campaign_id,
        workspace_id=operator_workspace().pk,
    )

    assert created is True
    assert Suppression.objects.get(pk=entry.pk).source_campaign_id is None


def test_waits_for_deletion_in_progress(
    make_campaign: Callable[..., Campaign], other_session: psycopg.Connection
) -> None:
    campaign = make_campaign(recipients=[])
    # The other session deletes the campaign and has not committed yet.
    other_session.execute(f"DELETE FROM {Campaign._meta.db_table} WHERE id = %s", [campaign.pk])

    thread, outcome = in_thread(
        lambda: suppress(
            email="ada@example.com",
            reason=UNSUBSCRIBED,
            campaign_id=campaign.pk,
            workspace_id=operator_workspace().pk,
        )
    )
    wait_until(
        lambda: blocked_by(other_session.info.backend_pid),
        WAIT_SECONDS,
        "suppress did not wait for the deleting session",
    )
    other_session.commit()
    thread.join(timeout=WAIT_SECONDS)

    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    entry, created = outcome["result"]
    assert created is True
    assert Suppression.objects.get(pk=entry.pk).source_campaign_id is None


def test_deletion_waits_then_clears_source(make_campaign: Callable[..., Campaign]) -> None:
    campaign = make_campaign(recipients=[])
    added = threading.Event()
    release = threading.Event()
    backend: dict[str, int] = {}

    def add_and_hold() -> tuple[Suppression, bool]:
        with transaction.atomic():
            result = suppress(
                email="ada@example.com",
                reason=UNSUBSCRIBED,
                campaign_id=campaign.pk,
                workspace_id=operator_workspace().pk,
            )
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                row = cursor.fetchone()
            assert row is not None
            backend["pid"] = row[0]
            added.set()
            release.wait(timeout=WAIT_SECONDS)
        return result

    adder, added_outcome = in_thread(add_and_hold)
    assert added.wait(timeout=WAIT_SECONDS)
    deleter, deleted_outcome = in_thread(campaign.delete_if_pending)
    wait_until(
        lambda: blocked_by(backend["pid"]),
        WAIT_SECONDS,
        "the deletion did not wait for the uncommitted entry",
    )
    release.set()
    adder.join(timeout=WAIT_SECONDS)
    deleter.join(timeout=WAIT_SECONDS)

    assert "error" not in added_outcome, added_outcome.get("error")
    assert "error" not in deleted_outcome, deleted_outcome.get("error")
    assert deleted_outcome["result"] is True
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    entry = Suppression.objects.get()
    assert entry.email == "ada@example.com"
    assert entry.source_campaign_id is None
