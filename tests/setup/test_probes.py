"""Unit tests of URL parsing, port choice and the protocol probes, against fake loopback servers."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from localdev.envfile import Setting
from localdev.errors import ServiceError
from localdev.probes import is_port_free, probe_postgres, probe_redis
from localdev.services import choose_private_url
from localdev.urls import (
    ServerAddress,
    libpq_url,
    mask_password,
    parse_postgres_url,
    parse_redis_url,
    replace_port,
)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_server() -> Iterator[Callable[[bytes], int]]:
    """Start loopback servers that read one request and send a fixed reply; return the port."""
    listeners: list[socket.socket] = []

    def start(reply: bytes) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            with contextlib.suppress(OSError):
                connection, _ = listener.accept()
                with connection:
                    connection.recv(4096)
                    connection.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for listener in listeners:
        listener.close()


def postgres_message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def postgres_error(code: str, message: str) -> bytes:
    fields = b"SFATAL\0C" + code.encode() + b"\0M" + message.encode() + b"\0\0"
    return postgres_message(b"E", fields)


def test_parse_postgres_url_defaults() -> None:
    target = parse_postgres_url("postgres://127.0.0.1/campaign_dispatcher")

    assert target.address == ServerAddress("127.0.0.1", 5432)
    assert target.user == "postgres"
    assert target.password is None
    assert target.database == "campaign_dispatcher"


def test_parse_postgres_url_socket_folder() -> None:
    target = parse_postgres_url("postgres://app@%2Fvar%2Frun%2Fpostgresql:5433/app")

    assert target.address.socket_path == "/var/run/postgresql/.s.PGSQL.5433"
    assert not target.address.is_loopback


def test_parse_postgres_url_rejects_other_schemes() -> None:
    with pytest.raises(ServiceError, match="not a PostgreSQL URL"):
        parse_postgres_url("mysql://root@127.0.0.1/db")


def test_parse_postgres_url_requires_database() -> None:
    with pytest.raises(ServiceError, match="names no database"):
        parse_postgres_url("postgres://postgres@127.0.0.1:5432")


def test_parse_redis_url_password() -> None:
    target = parse_redis_url("redis://:s3cret@localhost:6380/2")

    assert target.address == ServerAddress("localhost", 6380)
    assert target.password == "s3cret"
    assert target.address.is_loopback
    assert target.address.listen_host == "127.0.0.1"


def test_loopback_detection() -> None:
    assert ServerAddress("127.0.0.1", 1).is_loopback
    assert ServerAddress("::1", 1).is_loopback
    assert ServerAddress("127.0.1.1", 1).is_loopback
    assert not ServerAddress("db.example.com", 1).is_loopback
    assert not ServerAddress("192.168.1.10", 1).is_loopback


def test_mask_password_hides_only_password() -> None:
    masked = mask_password("postgres://app:s3cret@127.0.0.1:5432/db")

    assert masked == "postgres://app:***@127.0.0.1:5432/db"


def test_replace_port_keeps_the_rest() -> None:
    url = "postgres://app:s3cret@127.0.0.1:5432/db?sslmode=disable"

    assert replace_port(url, 15432) == "postgres://app:s3cret@127.0.0.1:15432/db?sslmode=disable"
    assert replace_port("redis://[::1]/0", 16379) == "redis://[::1]:16379/0"


def test_libpq_url_scheme() -> None:
    assert libpq_url("pgsql://postgres@127.0.0.1/db") == "postgresql://postgres@127.0.0.1/db"


def test_explicit_url_keeps_its_port() -> None:
    url = "postgres://postgres@127.0.0.1:25432/db"
    setting = Setting(url, "environment")

    chosen = choose_private_url(setting, ServerAddress("127.0.0.1", 25432), 15432, None)

    assert chosen == url


def test_default_url_moves_to_running_private_port() -> None:
    setting = Setting("postgres://postgres@127.0.0.1:5432/db", "default")

    chosen = choose_private_url(setting, ServerAddress("127.0.0.1", 5432), 15432, 15433)

    assert chosen == "postgres://postgres@127.0.0.1:15433/db"


def test_default_url_moves_to_free_port() -> None:
    occupied = socket.create_server(("127.0.0.1", 0))
    first_port = occupied.getsockname()[1]
    setting = Setting("redis://127.0.0.1:6379/0", "default")
    try:
        chosen = choose_private_url(setting, ServerAddress("127.0.0.1", 6379), first_port, None)
    finally:
        occupied.close()

    chosen_port = parse_redis_url(chosen).address.port
    assert chosen_port > first_port
    assert chosen == f"redis://127.0.0.1:{chosen_port}/0"


def test_port_free_while_nothing_listens() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    assert not is_port_free("127.0.0.1", port)
    listener.close()
    assert is_port_free("127.0.0.1", port)


def test_probe_postgres_down() -> None:
    target = parse_postgres_url(f"postgres://postgres@127.0.0.1:{unused_port()}/db")

    assert probe_postgres(target).state == "down"


def test_probe_postgres_authentication_request(fake_server: Callable[[bytes], int]) -> None:
    port = fake_server(postgres_message(b"R", struct.pack("!I", 0)))
    target = parse_postgres_url(f"postgres://postgres@127.0.0.1:{port}/db")

    assert probe_postgres(target).state == "ready"


def test_probe_postgres_login_error(fake_server: Callable[[bytes], int]) -> None:
    port = fake_server(postgres_error("3D000", 'database "db" does not exist'))
    target = parse_postgres_url(f"postgres://postgres@127.0.0.1:{port}/db")

    probe = probe_postgres(target)

    assert probe.state == "ready"
    assert "3D000" in probe.detail


def test_probe_postgres_starting(fake_server: Callable[[bytes], int]) -> None:
    port = fake_server(postgres_error("57P03", "the database system is starting up"))
    target = parse_postgres_url(f"postgres://postgres@127.0.0.1:{port}/db")

    assert probe_postgres(target).state == "starting"


def test_probe_postgres_foreign_server(fake_server: Callable[[bytes], int]) -> None:
    port = fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    target = parse_postgres_url(f"postgres://postgres@127.0.0.1:{port}/db")

    assert probe_postgres(target).state == "foreign"


def test_probe_redis_down() -> None:
    target = parse_redis_url(f"redis://127.0.0.1:{unused_port()}/0")

    assert probe_redis(target).state == "down"


def test_probe_redis_pong(fake_server: Callable[[bytes], int]) -> None:
    target = parse_redis_url(f"redis://127.0.0.1:{fake_server(b'+PONG\r\n')}/0")

    assert probe_redis(target).state == "ready"


def test_probe_redis_loading(fake_server: Callable[[bytes], int]) -> None:
    reply = b"-LOADING Redis is loading the dataset in memory\r\n"
    target = parse_redis_url(f"redis://127.0.0.1:{fake_server(reply)}/0")

    assert probe_redis(target).state == "starting"


def test_probe_redis_foreign_server(fake_server: Callable[[bytes], int]) -> None:
    target = parse_redis_url(f"redis://127.0.0.1:{fake_server(b'SSH-2.0-OpenSSH\r\n')}/0")

    assert probe_redis(target).state == "foreign"
