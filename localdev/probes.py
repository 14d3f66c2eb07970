"""Check whether a real PostgreSQL or Redis server responds at an address.

The checks speak each server's protocol with the standard library only, so
they also work before the virtual environment exists.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localdev.errors import ServiceError
from localdev.urls import PostgresTarget, RedisTarget, ServerAddress

PROBE_TIMEOUT_SECONDS = 3.0
STARTUP_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Probe:
    state: str  # "ready", "starting", "down" or "foreign"
    detail: str = ""

    @property
    def is_up(self) -> bool:
        return self.state == "ready"


def _connect(address: ServerAddress, timeout: float) -> socket.socket:
    if address.socket_path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.socket_path)
        except OSError:
            sock.close()
            raise
        return sock
    return socket.create_connection((address.host, address.port), timeout=timeout)


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return data


def probe_postgres(target: PostgresTarget, timeout: float = PROBE_TIMEOUT_SECONDS) -> Probe:
    """Send a PostgreSQL startup message and classify the first reply, like pg_isready.

    An authentication request or a login error (wrong password, unknown
    database) means the server accepts connections: "ready". SQLSTATE 57P03
    means it is starting or stopping: "starting".
    """
    try:
        sock = _connect(target.address, timeout)
    except OSError as error:
        return Probe("down", str(error))
    with sock:
        try:
            parameters = b"".join(
                key + b"\0" + value.encode() + b"\0"
                for key, value in ((b"user", target.user), (b"database", target.database))
            )
            body = struct.pack("!I", 3 << 16) + parameters + b"\0"  # protocol version 3.0
            sock.sendall(struct.pack("!I", len(body) + 4) + body)
            kind = _receive_exactly(sock, 1)
            if kind not in (b"R", b"E"):
                return Probe("foreign", f"unexpected first reply byte {kind!r}")
            (length,) = struct.unpack("!I", _receive_exactly(sock, 4))
            if not 4 <= length <= 65536:
                return Probe("foreign", f"implausible message length {length}")
            payload = _receive_exactly(sock, length - 4)
        except (OSError, ConnectionError) as error:
            return Probe("foreign", f"no PostgreSQL reply: {error}")
        if kind == b"R":
            with contextlib.suppress(OSError):
                sock.sendall(b"X\0\0\0\4")  # Terminate
            return Probe("ready")
        fields = {
            item[:1]: item[1:].decode(errors="replace") for item in payload.split(b"\0") if item
        }
        code = fields.get(b"C", "")
        message = fields.get(b"M", "")
        if code == "57P03":
            return Probe("starting", message)
        return Probe("ready", f"login error {code}: {message}")


def _redis_command(*arguments: str) -> bytes:
    encoded = [argument.encode() for argument in arguments]
    parts = [f"*{len(encoded)}\r\n".encode()]
    for argument in encoded:
        parts.append(f"${len(argument)}\r\n".encode() + argument + b"\r\n")
    return b"".join(parts)


def _read_redis_line(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
        if len(data) > 4096:
            raise ConnectionError("reply line longer than 4096 bytes")
    return data[:-2].decode(errors="replace")


def probe_redis(target: RedisTarget, timeout: float = PROBE_TIMEOUT_SECONDS) -> Probe:
    """Send PING (after AUTH when the URL has a password) and classify the reply."""
    try:
        sock = _connect(target.address, timeout)
    except OSError as error:
        return Probe("down", str(error))
    try:
        if target.use_tls:
            sock = ssl.create_default_context().wrap_socket(
                sock, server_hostname=target.address.host
            )
        if target.password is not None:
            auth = [target.username, target.password] if target.username else [target.password]
            sock.sendall(_redis_command("AUTH", *auth))
            reply = _read_redis_line(sock)
            if not reply.startswith("+"):
                return Probe("ready", f"AUTH failed: {reply}")
        sock.sendall(_redis_command("PING"))
        reply = _read_redis_line(sock)
    except (OSError, ConnectionError) as error:
        return Probe("foreign", f"no Redis reply: {error}")
    finally:
        sock.close()
    if reply == "+PONG":
        return Probe("ready")
    if reply.startswith("-LOADING"):
        return Probe("starting", reply)
    if reply.startswith(("-NOAUTH", "-WRONGPASS", "-ERR")):
        return Probe("ready", f"PING failed: {reply}")
    return Probe("foreign", f"unexpected reply {reply[:80]!r}")


def wait_until_ready(probe: Callable[[Any], Probe], target: object, timeout: float) -> Probe:
    """Repeat `probe(target)` until it reports "ready" or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    result = probe(target)
    while not result.is_up and time.monotonic() < deadline:
        time.sleep(0.2)
        result = probe(target)
    return result


def find_free_port(host: str, first: int, attempts: int = 100) -> int:
    for port in range(first, first + attempts):
        if is_port_free(host, port):
            return port
    raise ServiceError(f"no free port on {host} in {first}-{first + attempts - 1}")


def is_port_free(host: str, port: int) -> bool:
    """Tell whether a server could listen on `host`:`port`.

    SO_REUSEADDR, which PostgreSQL and Redis set too, lets the bind succeed
    while connections to a stopped server linger in TIME_WAIT.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
