from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from django.db import connection

from dispatch.locks import ADVISORY_LOCK_NAMESPACE


@pytest.fixture
def other_session_lock() -> Iterator[Callable[[int], None]]:
    """Take advisory locks `(namespace, key)` from a separate PostgreSQL session."""
    sessions: list[psycopg.Connection] = []

    def lock(key: int) -> None:
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        other = psycopg.connect(autocommit=True, **params)
        sessions.append(other)
        row = other.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, key]
        ).fetchone()
        assert row == (True,)

    yield lock
    for session in sessions:
        session.close()
