"""Parse the PostgreSQL and Redis URLs of the settings."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from localdev.errors import ServiceError

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}
REDIS_SCHEMES = {"redis", "rediss", "unix"}


@dataclass(frozen=True)
class ServerAddress:
    """Listening address of a server: a TCP host and port, or a unix socket path."""

    host: str
    port: int
    socket_path: str | None = None

    @property
    def is_loopback(self) -> bool:
        return self.socket_path is None and (
            self.host in LOOPBACK_HOSTS or self.host.startswith("127.")
        )

    @property
    def listen_host(self) -> str:
        """The address a private server binds; `localhost` becomes 127.0.0.1."""
        return "127.0.0.1" if self.host == "localhost" else self.host

    def __str__(self) -> str:
        if self.socket_path:
            return self.socket_path
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def replace_port(url: str, port: int) -> str:
    """Return `url` with its port set to `port`, keeping user, password, host and path."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def libpq_url(url: str) -> str:
    """Return `url` with a scheme that libpq accepts (it rejects pgsql://)."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql"))


@dataclass(frozen=True)
class PostgresTarget:
    url: str
    address: ServerAddress
    user: str
    password: str | None
    database: str


def parse_postgres_url(url: str) -> PostgresTarget:
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ServiceError(
            f"DATABASE_URL={mask_password(url)!r} is not a PostgreSQL URL: "
            "expected postgres://USER@HOST:PORT/DATABASE"
        )
    try:
        port = parts.port or 5432
    except ValueError:
        raise ServiceError(f"DATABASE_URL={mask_password(url)!r} has an invalid port") from None
    host = unquote(parts.hostname or "127.0.0.1")
    # libpq takes a host that starts with "/" as the folder of a unix socket.
    socket_path = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ServiceError(f"DATABASE_URL={mask_password(url)!r} names no database")
    return PostgresTarget(
        url=url,
        address=ServerAddress(host, port, socket_path),
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password is not None else None,
        database=database,
    )


@dataclass(frozen=True)
class RedisTarget:
    url: str
    address: ServerAddress
    username: str | None
    password: str | None
    use_tls: bool


def parse_redis_url(url: str) -> RedisTarget:
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise ServiceError(
            f"REDIS_URL={mask_password(url)!r} is not a Redis URL: expected redis://HOST:PORT/DB"
        )
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if parts.scheme == "unix":
        address = ServerAddress("", 0, parts.path)
    else:
        try:
            port = parts.port or 6379
        except ValueError:
            raise ServiceError(f"REDIS_URL={mask_password(url)!r} has an invalid port") from None
        address = ServerAddress(parts.hostname or "127.0.0.1", port)
    return RedisTarget(url, address, username, password, use_tls=parts.scheme == "rediss")
