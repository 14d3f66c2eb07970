"""/healthz and /readyz: liveness without dependencies, readiness of every dependency."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from config.celery import app as celery_app
from ops import health
from tests.servers import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_migration_check() -> Iterator[None]:
    health.forget_migrations_check()
    yield
    health.forget_migrations_check()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never responds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_healthz_answers_without_queries(anonymous_client: Client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = anonymous_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_head(anonymous_client: Client, path: str):
    response = anonymous_client.head(path)

    assert response.status_code == 200


def test_readyz_all_checks_pass(anonymous_client: Client):
    response = anonymous_client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "broker"}
    for name, result in body["checks"].items():
        assert result["ok"] is True, name
        assert result["ms"] >= 0
    assert "failed" not in body


def test_failed_probe_logs_warning_only(anonymous_client: Client, settings, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    with caplog.at_level(logging.INFO):
        response = anonymous_client.get("/readyz")

    assert response.status_code == 503
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert any(
        r.levelno == logging.WARNING and "Redis check failed" in r.getMessage()
        for r in caplog.records
    )


def test_readyz_redis_unreachable(anonymous_client: Client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = anonymous_client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"]["error"] == "Redis is unreachable or timed out"
    assert body["checks"]["database"]["ok"] is True


def test_readyz_redis_silent_times_out(anonymous_client: Client, settings, silent_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_port}/0"
    settings.READINESS_CHECK_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()

    response = anonymous_client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"]
    assert time.monotonic() - started < 3


def test_readyz_broker_unreachable(anonymous_client: Client, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{free_port()}/0")

    response = anonymous_client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


def test_readyz_database_unreachable(anonymous_client: Client, monkeypatch):
    port = free_port()
    original = health.database_settings
    monkeypatch.setattr(health, "database_settings", lambda: {**original(), "PORT": str(port)})

    response = anonymous_client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["checks"]["database"]["error"] == ("PostgreSQL is unreachable or timed out")
    # The client learns nothing about the server's address.
    assert str(port) not in response.content.decode()


def test_readyz_unapplied_migration(anonymous_client: Client, monkeypatch):
    real_applied = MigrationRecorder.applied_migrations

    def applied_without_latest_audit(recorder: MigrationRecorder) -> dict:
        applied = dict(real_applied(recorder))
        latest = max(key for key in applied if key[0] == "audit")
        del applied[latest]
        return applied

    monkeypatch.setattr(MigrationRecorder, "applied_migrations", applied_without_latest_audit)

    response = anonymous_client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert "unapplied migrations, the first audit." in body["checks"]["database"]["error"]


def test_readyz_caches_passed_migration_check(anonymous_client: Client, monkeypatch):
    assert anonymous_client.get("/readyz").status_code == 200

    def unreadable(recorder: MigrationRecorder) -> dict:
        raise AssertionError("the migration check ran again after it had passed")

    monkeypatch.setattr(MigrationRecorder, "applied_migrations", unreadable)
    response = anonymous_client.get("/readyz")

    assert response.status_code == 200


def test_readyz_failed_migration_check_runs_again(anonymous_client: Client, monkeypatch):
    def unreadable(recorder: MigrationRecorder) -> dict:
        raise RuntimeError("the migrations table is locked")

    with monkeypatch.context() as patch:
        patch.setattr(MigrationRecorder, "applied_migrations", unreadable)
        failed = anonymous_client.get("/readyz")

    assert failed.status_code == 503
    assert failed.json()["checks"]["database"]["error"] == (
        "the applied migrations could not be read"
    )
    assert anonymous_client.get("/readyz").status_code == 200
