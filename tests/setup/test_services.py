"""End-to-end tests of `bin/services`: private PostgreSQL and Redis servers in a temporary folder.

Each test points DATABASE_URL and REDIS_URL at loopback ports where nothing
listens, so `bin/services ensure` must start private servers there. They need
the PostgreSQL and Redis server binaries, and they never touch the developer's
var/ folder or .env file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from localdev import services
from localdev.envfile import read_dotenv
from localdev.private_postgres import candidate_postgres_bin_dirs

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVICES_COMMAND = PROJECT_ROOT / "bin" / "services"

pytestmark = pytest.mark.skipif(
    not candidate_postgres_bin_dirs() or shutil.which("redis-server") is None,
    reason="needs PostgreSQL server binaries (initdb, pg_ctl, postgres) and redis-server",
)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_pid(path: Path) -> int:
    return int(path.read_text().splitlines()[0])


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@dataclass
class Sandbox:
    folder: Path
    postgres_port: int
    redis_port: int

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.postgres_port}/campaign_dispatcher"

    @property
    def libpq_url(self) -> str:
        return self.database_url.replace("postgres://", "postgresql://", 1)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def services_dir(self) -> Path:
        return self.folder / "var"

    @property
    def dotenv(self) -> Path:
        return self.folder / ".env"

    @property
    def postgres_pid_file(self) -> Path:
        return self.services_dir / "postgres" / "data" / "postmaster.pid"

    @property
    def redis_pid_file(self) -> Path:
        return self.services_dir / "redis" / "redis.pid"

    def run(self, *arguments: str, urls_in_environment: bool = True) -> str:
        """Run bin/services; without `urls_in_environment` it must find the URLs in .env."""
        environment = dict(os.environ, SERVICES_DIR=str(self.services_dir))
        environment["DOTENV_PATH"] = str(self.dotenv)
        environment.pop("DATABASE_URL", None)
        environment.pop("REDIS_URL", None)
        if urls_in_environment:
            environment["DATABASE_URL"] = self.database_url
            environment["REDIS_URL"] = self.redis_url
        completed = subprocess.run(
            [sys.executable, str(SERVICES_COMMAND), *arguments],
            cwd=PROJECT_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, f"bin/services {' '.join(arguments)} failed:\n{output}"
        return output

    def server_pids(self) -> tuple[int, int]:
        return read_pid(self.postgres_pid_file), read_pid(self.redis_pid_file)


def kill_leftover_servers(sandbox: Sandbox) -> None:
    """Stop servers a failed test left running, by the PIDs in their pid files."""
    leftovers = [(sandbox.postgres_pid_file, signal.SIGQUIT)]
    leftovers.append((sandbox.redis_pid_file, signal.SIGKILL))
    for pid_file, signal_number in leftovers:
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError, ProcessLookupError):
            pid = read_pid(pid_file)
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"postgres" in command_line or b"redis-server" in command_line:
                os.kill(pid, signal_number)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # The folder is made by hand instead of tmp_path because pytest's base
    # folder is private (mode 0700), and as root the private PostgreSQL runs
    # as the postgres user, which must reach its data folder.
    folder = Path(tempfile.mkdtemp(prefix="services-test-"))
    folder.chmod(0o755)
    box = Sandbox(folder=folder, postgres_port=unused_port(), redis_port=unused_port())
    yield box
    kill_leftover_servers(box)
    postgres_folder = box.services_dir / "postgres"
    if postgres_folder.is_symlink():
        shutil.rmtree(postgres_folder.resolve(), ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_ensure_starts_private_servers(sandbox: Sandbox) -> None:
    output = sandbox.run("ensure")

    assert "PostgreSQL: creating a private cluster" in output
    assert "Redis: starting the private server" in output
    with psycopg.connect(sandbox.libpq_url) as db:
        row = db.execute(
            "SELECT current_database(), current_setting('port')::int, "
            "current_setting('data_directory')"
        ).fetchone()
    assert row is not None
    database, port, data_directory = row
    assert database == "campaign_dispatcher"
    assert port == sandbox.postgres_port
    assert Path(data_directory) == sandbox.services_dir / "postgres" / "data"

    client = redis.Redis.from_url(sandbox.redis_url)
    try:
        assert client.ping() is True
        assert client.config_get("dir")["dir"] == str(sandbox.services_dir / "redis")
    finally:
        client.close()

    recorded = read_dotenv(sandbox.dotenv)
    assert recorded["DATABASE_URL"] == sandbox.database_url
    assert recorded["REDIS_URL"] == sandbox.redis_url


def test_second_ensure_is_a_no_op(sandbox: Sandbox) -> None:
    sandbox.run("ensure")
    pids_before = sandbox.server_pids()

    output = sandbox.run("ensure")

    assert sandbox.server_pids() == pids_before
    assert "starting" not in output
    assert all(is_alive(pid) for pid in pids_before)


def test_stop_ends_private_servers(sandbox: Sandbox) -> None:
    sandbox.run("ensure")
    postgres_pid, redis_pid = sandbox.server_pids()

    sandbox.run("stop")

    assert not is_alive(postgres_pid)
    assert not is_alive(redis_pid)
    assert refuses_connections(sandbox.postgres_port)
    assert refuses_connections(sandbox.redis_port)


def test_ensure_restarts_stopped_servers_from_env_file(sandbox: Sandbox) -> None:
    sandbox.run("ensure")
    with psycopg.connect(sandbox.libpq_url, autocommit=True) as db:
        db.execute("CREATE TABLE survives_restart (id int)")
    sandbox.run("stop")

    output = sandbox.run("ensure", urls_in_environment=False)

    assert "creating a private cluster" not in output
    with psycopg.connect(sandbox.libpq_url) as db:
        row = db.execute(
            "SELECT to_regclass('survives_restart') IS NOT NULL, current_setting('port')::int"
        ).fetchone()
    assert row == (True, sandbox.postgres_port)
    client = redis.Redis.from_url(sandbox.redis_url)
    try:
        assert client.ping() is True
    finally:
        client.close()
    sandbox.run("stop")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as the postgres user")
def test_unreachable_folder_moves_cluster(sandbox: Sandbox) -> None:
    sandbox.folder.chmod(0o700)

    sandbox.run("ensure")
    postgres_pid, _ = sandbox.server_pids()

    link = sandbox.services_dir / "postgres"
    assert link.is_symlink()
    assert link.resolve().parent == Path(tempfile.gettempdir())
    with psycopg.connect(sandbox.libpq_url) as db:
        row = db.execute("SELECT current_setting('data_directory')").fetchone()
    assert row == (str(link.resolve() / "data"),)
    sandbox.run("stop")
    assert not is_alive(postgres_pid)


def test_default_urls_move_to_free_ports(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no URL set and nothing at the default ports, the servers go to the first free port.

    This runs in-process so that the defaults can point at unused ports: the
    real defaults (5432, 6379) usually have servers on this machine.
    """
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("SERVICES_DIR", str(sandbox.services_dir))
    monkeypatch.setenv("DOTENV_PATH", str(sandbox.dotenv))
    default_database_url = sandbox.database_url
    monkeypatch.setattr(services, "DEFAULT_DATABASE_URL", default_database_url)
    monkeypatch.setattr(services, "DEFAULT_REDIS_URL", sandbox.redis_url)
    monkeypatch.setattr(services, "PRIVATE_POSTGRES_FIRST_PORT", unused_port())
    monkeypatch.setattr(services, "PRIVATE_REDIS_FIRST_PORT", unused_port())

    assert services.main(["ensure"]) == 0
    capsys.readouterr()

    recorded = read_dotenv(sandbox.dotenv)
    database_port = int(recorded["DATABASE_URL"].split(":")[2].split("/")[0])
    redis_port = int(recorded["REDIS_URL"].split(":")[2].split("/")[0])
    assert database_port >= services.PRIVATE_POSTGRES_FIRST_PORT
    assert redis_port >= services.PRIVATE_REDIS_FIRST_PORT
    assert recorded["DATABASE_URL"] == default_database_url.replace(
        f":{sandbox.postgres_port}/", f":{database_port}/"
    )
    with psycopg.connect(recorded["DATABASE_URL"].replace("postgres://", "postgresql://")) as db:
        assert db.execute("SELECT current_setting('port')::int").fetchone() == (database_port,)
    client = redis.Redis.from_url(recorded["REDIS_URL"])
    try:
        assert client.ping() is True
    finally:
        client.close()

    assert services.main(["ensure"]) == 0
    second_output = capsys.readouterr().out
    assert read_dotenv(sandbox.dotenv) == recorded
    assert "starting" not in second_output
    assert second_output.count("is reachable") == 2
    assert services.main(["stop"]) == 0
