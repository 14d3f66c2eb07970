"""The Idempotency-Key header of create-campaign and dispatch.

A request with a key runs its work in one transaction that also inserts
the key's IdempotencyRecord with the response. A second request with the
same key in the same workspace then

- gets the stored response (status and body) when its operation and body
  are the same, without doing the work again;
- gets 422 `idempotency_key_reused` when they differ;
- waits while the first request is still running, because its INSERT
  waits on the unique index for the first transaction to end, and gets
  409 `idempotency_key_in_progress` when that takes longer than
  API_IDEMPOTENCY_WAIT_SECONDS. When the first request fails and rolls
  back, the waiting one does the work itself.

Records expire after API_IDEMPOTENCY_KEY_HOURS. A workspace's expired
records are deleted by its next request that carries a key, and the hourly
`api.sweep_idempotency` task (api/tasks.py) deletes the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg import errors as pg_errors

from api.errors import ApiError
from api.models import IDEMPOTENCY_KEY_MAX_LENGTH, IdempotencyRecord

HEADER = "Idempotency-Key"

# Responses with these statuses are not stored: a rejected request did no
# work, so its client may fix the body or wait for the campaign's state and
# send the same key again.
_UNSTORED_STATUS_FLOOR = 400

Work = Callable[[], tuple[int, dict[str, Any]]]


def request_hash(operation: str, payload: Any) -> str:
    """Hash the operation and the request body in canonical JSON."""
    canonical = json.dumps(
        {"operation": operation, "body": payload}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or not key.isprintable():
        raise ApiError(
            422,
            "idempotency_key_invalid",
            f"The {HEADER} header must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable "
            "characters, such as a UUID.",
        )
    return key


def run_once(
    workspace_id: int, key: str | None, operation: str, payload: Any, work: Work
) -> tuple[int, dict[str, Any]]:
    """Run `work` in a transaction, or return the stored response of an earlier run of `key`.

    `work` returns (status, body). Without a key it simply runs.
    """
    if key is None:
        with transaction.atomic():
            return work()
    key = check_key(key)
    digest = request_hash(operation, payload)
    try:
        with transaction.atomic():
            _set_lock_timeout()
            _delete_expired(workspace_id)
            inserted = _claim(workspace_id, key, digest)
            if not inserted:
                return _replay(workspace_id, key, digest)
            _reset_lock_timeout()
            status, body = work()
            if status >= _UNSTORED_STATUS_FLOOR:
                IdempotencyRecord.objects.filter(workspace_id=workspace_id, key=key).delete()
            else:
                IdempotencyRecord.objects.filter(workspace_id=workspace_id, key=key).update(
                    response_status=status, response_body=body
                )
            return status, body
    except OperationalError as exc:
        if not isinstance(exc.__cause__, pg_errors.LockNotAvailable):
            raise
        raise ApiError(
            409,
            "idempotency_key_in_progress",
            f"Another request with this {HEADER} is still running. Retry it later to get "
            "its response.",
        ) from None


def _set_lock_timeout() -> None:
    milliseconds = int(settings.API_IDEMPOTENCY_WAIT_SECONDS * 1000)
    with connection.cursor() as cursor:
        # SET LOCAL lasts until the transaction ends and takes no parameters.
        cursor.execute(f"SET LOCAL lock_timeout = {milliseconds}")


def _reset_lock_timeout() -> None:
    # The work's own row locks wait as long as they do without a key.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout TO DEFAULT")


def _delete_expired(workspace_id: int) -> None:
    IdempotencyRecord.objects.filter(
        workspace_id=workspace_id, expires_at__lte=timezone.now()
    ).delete()


def _claim(workspace_id: int, key: str, digest: str) -> bool:
    """Insert the key's record; returns False when another transaction committed one first.

    INSERT ... ON CONFLICT DO NOTHING waits for a concurrent transaction
    that inserted the same key, and then skips the row if that one committed.
    """
    now = timezone.now()
    table = IdempotencyRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table}
                   (workspace_id, key, request_hash, response_status, response_body,
                    created_at, expires_at)
            VALUES (%s, %s, %s, 0, 'null'::jsonb, %s, %s)
            ON CONFLICT (workspace_id, key) DO NOTHING
            RETURNING id
            """,
            [
                workspace_id,
                key,
                digest,
                now,
                now + timedelta(hours=settings.API_IDEMPOTENCY_KEY_HOURS),
            ],
        )
        return cursor.fetchone() is not None


def _replay(workspace_id: int, key: str, digest: str) -> tuple[int, dict[str, Any]]:
    record = IdempotencyRecord.objects.get(workspace_id=workspace_id, key=key)
    if record.request_hash != digest:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used for a request with another endpoint or body. Use a new "
            "key for a new request.",
        )
    return record.response_status, record.response_body
