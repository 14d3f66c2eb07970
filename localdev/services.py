"""The bin/services command: check, start and stop the development servers.

`ensure` makes the servers named by DATABASE_URL and REDIS_URL reachable. When
a URL points at a loopback address where nothing listens, it starts a private
server there from the installed server binaries, with its files in
SERVICES_DIR (default: var/). It records that URL in the .env file, so that
manage.py, the worker and the tests find the server. `ensure` then creates the
database when it is missing, which needs psycopg (run bin/services with
.venv/bin/python).

Settings come from the environment first, then from the .env file (DOTENV_PATH,
default: .env in the project root), then from the defaults below, which match
the defaults of config/settings.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from localdev.envfile import (
    PROJECT_ROOT,
    Setting,
    dotenv_path,
    init_dotenv,
    read_dotenv,
    read_setting,
    update_dotenv,
)
from localdev.errors import ServiceError
from localdev.private_postgres import PrivatePostgres
from localdev.private_redis import PrivateRedis
from localdev.probes import (
    STARTUP_TIMEOUT_SECONDS,
    find_free_port,
    probe_postgres,
    probe_redis,
    wait_until_ready,
)
from localdev.urls import (
    PostgresTarget,
    RedisTarget,
    ServerAddress,
    libpq_url,
    mask_password,
    parse_postgres_url,
    parse_redis_url,
    replace_port,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/campaign_dispatcher"


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


PRIVATE_POSTGRES_FIRST_PORT = 15432


PRIVATE_REDIS_FIRST_PORT = 16379


def services_dir() -> Path:
    return Path(os.environ.get("SERVICES_DIR") or PROJECT_ROOT / "var").absolute()


@contextlib.contextmanager
def services_lock() -> Iterator[None]:
    """Hold an exclusive lock on SERVICES_DIR so that two runs never start the same server."""
    directory = services_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def choose_private_url(
    setting: Setting, address: ServerAddress, first_port: int, running_port: int | None
) -> str:
    """Return the URL a private server should serve.

    An explicit URL is served as it is, on its own port. The built-in default
    moves to the port of the private server when that one runs, else to the
    first free port from `first_port` on.
    """
    if not setting.is_default:
        return setting.value
    port = running_port or find_free_port(address.listen_host, first_port)
    return replace_port(setting.value, port)


def ensure_postgres() -> PostgresTarget:
    setting = read_setting("DATABASE_URL", DEFAULT_DATABASE_URL)
    target = parse_postgres_url(setting.value)
    display_url = mask_password(target.url)
    probe = probe_postgres(target)
    if probe.state == "starting":
        probe = wait_until_ready(probe_postgres, target, STARTUP_TIMEOUT_SECONDS)
    if probe.is_up:
        print(f"PostgreSQL: {display_url} is reachable")
        return target
    if probe.state == "foreign":
        raise ServiceError(
            f"{target.address} responds, but not as PostgreSQL ({probe.detail}): "
            "point DATABASE_URL at a PostgreSQL server or a free loopback port"
        )
    if probe.state == "starting":
        raise ServiceError(
            f"PostgreSQL at {target.address} is still starting after {STARTUP_TIMEOUT_SECONDS} s"
        )
    if not target.address.is_loopback:
        raise ServiceError(
            f"PostgreSQL at {target.address} is not reachable ({probe.detail}): start it, "
            "or point DATABASE_URL at a free loopback port to get a private server"
        )

    print(f"PostgreSQL: {display_url} is not reachable ({probe.detail})")
    private = PrivatePostgres(services_dir())
    url = choose_private_url(
        setting, target.address, PRIVATE_POSTGRES_FIRST_PORT, private.running_port()
    )
    target = parse_postgres_url(url)
    if not probe_postgres(target).is_up:
        private.start(target)
    probe = wait_until_ready(probe_postgres, target, STARTUP_TIMEOUT_SECONDS)
    if not probe.is_up:
        raise ServiceError(
            f"the private PostgreSQL does not respond on {target.address}: {probe.detail}"
        )
    record_url("DATABASE_URL", url)
    return target


def ensure_redis() -> RedisTarget:
    setting = read_setting("REDIS_URL", DEFAULT_REDIS_URL)
    target = parse_redis_url(setting.value)
    display_url = mask_password(target.url)
    probe = probe_redis(target)
    if probe.state == "starting":
        probe = wait_until_ready(probe_redis, target, STARTUP_TIMEOUT_SECONDS)
    if probe.is_up:
        if probe.detail:
            raise ServiceError(
                f"Redis at {target.address} responds, but {probe.detail}: check REDIS_URL"
            )
        print(f"Redis: {display_url} is reachable")
        return target
    if probe.state == "foreign":
        raise ServiceError(
            f"{target.address} responds, but not as Redis ({probe.detail}): "
            "point REDIS_URL at a Redis server or a free loopback port"
        )
    if probe.state == "starting":
        raise ServiceError(
            f"Redis at {target.address} is still loading after {STARTUP_TIMEOUT_SECONDS} s"
        )
    if not target.address.is_loopback or target.use_tls:
        raise ServiceError(
            f"Redis at {target.address} is not reachable ({probe.detail}): start it, "
            "or point REDIS_URL at a free loopback port (redis://) to get a private server"
        )

    print(f"Redis: {display_url} is not reachable ({probe.detail})")
    private = PrivateRedis(services_dir())
    running_port = private.configured_port() if private.running_pid() is not None else None
    url = choose_private_url(setting, target.address, PRIVATE_REDIS_FIRST_PORT, running_port)
    target = parse_redis_url(url)
    if not probe_redis(target).is_up:
        private.start(target)
    record_url("REDIS_URL", url)
    return target


def record_url(name: str, url: str) -> None:
    path = dotenv_path()
    if read_dotenv(path).get(name) == url:
        return
    update_dotenv(path, {name: url})
    print(f"Recorded {name}={mask_password(url)} in {path}")


def ensure_database(target: PostgresTarget) -> None:
    """Create the database named in DATABASE_URL when it does not exist.

    libpq reports a missing database at connect time without an SQLSTATE, so
    the check queries pg_database through the `postgres` maintenance database.
    """
    try:
        import psycopg
        from psycopg import errors, sql
    except ImportError:
        raise ServiceError(
            f"psycopg is not installed for {sys.executable}, so the database "
            f"{target.database!r} cannot be checked: run `.venv/bin/python bin/services ensure`"
        ) from None

    url = libpq_url(target.url)
    try:
        with psycopg.connect(url, connect_timeout=10):
            print(f"PostgreSQL: database {target.database!r} exists")
            return
    except psycopg.OperationalError as error:
        first_error = error

    try:
        with psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=10) as admin:
            found = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
            ).fetchone()
            if found:
                raise first_error
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.database)))
    except errors.DuplicateDatabase:
        return
    except psycopg.OperationalError as error:
        raise ServiceError(
            f"cannot log in to PostgreSQL at {target.address} as {target.user!r}: {error}\n"
            "Fix DATABASE_URL, or point it at a free loopback port to get a private server "
            "with trust authentication, e.g. "
            f"DATABASE_URL={replace_port(DEFAULT_DATABASE_URL, PRIVATE_POSTGRES_FIRST_PORT)}"
        ) from None
    except psycopg.Error as error:
        raise ServiceError(f"creating database {target.database!r} failed: {error}") from None
    print(f"PostgreSQL: created database {target.database!r}")


def command_ensure(arguments: argparse.Namespace) -> None:
    with services_lock():
        postgres = ensure_postgres()
        ensure_redis()
    if arguments.create_database:
        ensure_database(postgres)


def command_stop(arguments: argparse.Namespace) -> None:
    root = services_dir()
    if not root.exists():
        print(f"No private servers: {root} does not exist")
        return
    with services_lock():
        stopped_postgres = PrivatePostgres(root).stop()
        stopped_redis = PrivateRedis(root).stop()
    if not (stopped_postgres or stopped_redis):
        print(f"No private server in {root} is running")


def command_status(arguments: argparse.Namespace) -> None:
    root = services_dir()
    postgres_setting = read_setting("DATABASE_URL", DEFAULT_DATABASE_URL)
    postgres_probe = probe_postgres(parse_postgres_url(postgres_setting.value))
    redis_setting = read_setting("REDIS_URL", DEFAULT_REDIS_URL)
    redis_probe = probe_redis(parse_redis_url(redis_setting.value))
    private_postgres = PrivatePostgres(root)
    private_redis = PrivateRedis(root)

    rows = [
        (
            "PostgreSQL",
            postgres_setting,
            postgres_probe,
            private_postgres.running_pid(),
            private_postgres.root,
        ),
        ("Redis", redis_setting, redis_probe, private_redis.running_pid(), private_redis.root),
    ]
    for name, setting, probe, pid, folder in rows:
        detail = f" ({probe.detail})" if probe.detail else ""
        print(
            f"{name}: {mask_password(setting.value)} [from {setting.source}]: {probe.state}{detail}"
        )
        if pid is not None:
            print(f"  private server in {folder}: running, PID {pid}")
        elif folder.exists():
            print(f"  private server in {folder}: stopped")


def command_init_env(arguments: argparse.Namespace) -> None:
    path = dotenv_path()
    added = init_dotenv(path)
    if added:
        print(f"Wrote {', '.join(added)} to {path}")
    else:
        print(f"{path} already has a SECRET_KEY; left it unchanged")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bin/services",
        description="Check, start and stop the PostgreSQL and Redis servers used in development.",
        epilog="Environment: DATABASE_URL, REDIS_URL, DOTENV_PATH (default: .env), "
        "SERVICES_DIR (default: var/).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ensure = commands.add_parser(
        "ensure",
        help="make DATABASE_URL and REDIS_URL reachable, starting private servers when needed, "
        "and create the database",
    )
    ensure.add_argument(
        "--no-database",
        dest="create_database",
        action="store_false",
        help="skip creating the database (needs no psycopg)",
    )
    ensure.set_defaults(handler=command_ensure)

    stop = commands.add_parser("stop", help="stop the private servers in SERVICES_DIR")
    stop.set_defaults(handler=command_stop)

    status = commands.add_parser(
        "status", help="show whether each server responds and which private servers run"
    )
    status.set_defaults(handler=command_status)

    init_env = commands.add_parser(
        "init-env",
        help="create .env with DEBUG=true and a random SECRET_KEY, or add a missing SECRET_KEY",
    )
    init_env.set_defaults(handler=command_init_env)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        arguments.handler(arguments)
    except ServiceError as error:
        print(f"bin/services: error: {error}", file=sys.stderr)
        return 1
    return 0
