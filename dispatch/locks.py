"""PostgreSQL advisory locks, taken without waiting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# First key of every two-key advisory lock this app takes. Other code on the
# same database avoids collisions as long as it does not use this value.
ADVISORY_LOCK_NAMESPACE = 0x0CD1


@contextmanager
def advisory_lock(key: int, namespace: int = ADVISORY_LOCK_NAMESPACE) -> Iterator[bool]:
    """Try to take the advisory lock `(namespace, key)` without waiting; yield whether
    it was taken.

    The lock is session-level, so it belongs to this thread's database
    connection and stays held across transactions until the block exits. It is
    released on every exit path, and PostgreSQL drops it if the connection dies.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        row = cursor.fetchone()
    acquired = bool(row and row[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])
