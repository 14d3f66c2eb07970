"""The readiness checks behind /readyz: PostgreSQL, Redis, the Celery broker and migrations.

Each check opens a connection of its own with a short timeout and closes it,
so a probe neither waits on nor disturbs the connections that requests use.
The checks run in parallel threads (see ops/views.py), each bounded by
READINESS_CHECK_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import load_backend

logger = logging.getLogger(__name__)

# Set once the migration check has passed in this process. Migrations are
# applied before a deployment's new processes start, so a pass stays true
# for the life of the process and later probes skip the check.
_migrations_applied = False


class CheckFailed(Exception):
    """A readiness check failed; the message is safe to show to an anonymous client."""


def database_settings() -> dict[str, Any]:
    """Return a copy of the default database's settings with short timeouts."""
    database = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])
    timeout = settings.READINESS_CHECK_TIMEOUT_SECONDS
    options = database.setdefault("OPTIONS", {})
    # libpq takes whole seconds, and 0 would mean no timeout.
    options["connect_timeout"] = max(1, math.ceil(timeout))
    timeout_option = f"-c statement_timeout={int(timeout * 1000)}"
    options["options"] = f"{options.get('options', '')} {timeout_option}".strip()
    # A probe's connection is closed after each check, never pooled.
    options.pop("pool", None)
    database["CONN_MAX_AGE"] = 0
    return database


def _open_database() -> BaseDatabaseWrapper:
    database = database_settings()
    backend = load_backend(database["ENGINE"])
    wrapper: BaseDatabaseWrapper = backend.DatabaseWrapper(database, DEFAULT_DB_ALIAS)
    return wrapper


def check_database() -> None:
    """Run SELECT 1 on a new connection to PostgreSQL, then check for unapplied migrations."""
    global _migrations_applied
    wrapper = _open_database()
    try:
        try:
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:
            logger.warning("readiness: PostgreSQL check failed: %s: %s", type(exc).__name__, exc)
            raise CheckFailed("PostgreSQL is unreachable or timed out") from exc
        if _migrations_applied:
            return
        try:
            executor = MigrationExecutor(wrapper)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except Exception as exc:
            logger.warning("readiness: migration check failed: %s: %s", type(exc).__name__, exc)
            raise CheckFailed("the applied migrations could not be read") from exc
        if plan:
            names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
            logger.warning("readiness: %d unapplied migrations: %s", len(names), ", ".join(names))
            raise CheckFailed(f"{len(names)} unapplied migrations, the first {names[0]}")
        _migrations_applied = True
    finally:
        wrapper.close()
        # MigrationRecorder reads django_migrations through the alias, which
        # in this thread is a connection of its own; it must not stay open.
        connections[DEFAULT_DB_ALIAS].close()


def forget_migrations_check() -> None:
    """Make the next database check look at the migrations again."""
    global _migrations_applied
    _migrations_applied = False


def check_redis() -> None:
    """Send PING to the Redis server of REDIS_URL on a new connection."""
    timeout = settings.READINESS_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        logger.warning("readiness: Redis check failed: %s: %s", type(exc).__name__, exc)
        raise CheckFailed("Redis is unreachable or timed out") from exc
    finally:
        client.close()


def check_broker() -> None:
    """Connect to the Celery broker (CELERY_BROKER_URL) once, without retries."""
    from config.celery import app

    timeout = settings.READINESS_CHECK_TIMEOUT_SECONDS
    connection = app.connection_for_write(
        connect_timeout=timeout,
        transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout},
    )
    try:
        connection.ensure_connection(max_retries=0, timeout=max(1, math.ceil(timeout)))
    except Exception as exc:
        logger.warning("readiness: broker check failed: %s: %s", type(exc).__name__, exc)
        raise CheckFailed("the Celery broker is unreachable or timed out") from exc
    finally:
        connection.release()


CHECKS = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
}
