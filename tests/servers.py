"""The real ASGI app under uvicorn, started as a subprocess against the test database.

pytest-django's `live_server` is a WSGI server that buffers streaming
responses, so a server-sent-events stream never reaches the client through
it. Tests of the stream and browser tests use `app_server` instead.

tests/live/conftest.py and tests/system/conftest.py both import the
`app_server` fixture. pytest keeps a separate session-scoped instance per
conftest, so the instances share one uvicorn process through `_shared_server`
and the last one to finish stops it.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Startup, mostly Django's imports, took 1 to 10 s on a busy 2-CPU machine.
STARTUP_TIMEOUT_SECONDS = 30.0
# uvicorn gets --timeout-graceful-shutdown 2, so it exits within this after SIGTERM.
STOP_TIMEOUT_SECONDS = 5.0
LOG_TAIL_LINES = 40


def wait_until(condition: Callable[[], bool], timeout: float, failure_message: str) -> None:
    """Call `condition` every 50 ms until it returns true. Fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"{failure_message} (waited {timeout} s)")
        time.sleep(0.05)


def free_port() -> int:
    """Return a loopback TCP port that is free now.

    Another process could take the port before uvicorn binds it. uvicorn then
    exits, and the startup wait fails with the bind error from its log.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """Build a DATABASE_URL for pytest-django's test database from the current settings.

    Call it after `django_db_setup`, which renames the database in settings.
    """
    database = settings.DATABASES["default"]
    user = quote(database.get("USER") or "", safe="")
    password = quote(database.get("PASSWORD") or "", safe="")
    credentials = ""
    if user:
        credentials = f"{user}:{password}@" if password else f"{user}@"
    host = database.get("HOST") or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(database['NAME'], safe='')}"


@dataclass
class AppServer:
    """A running uvicorn process serving config.asgi."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return "(no log written)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _answers_http(base_url: str) -> bool:
    connection = http.client.HTTPConnection(urlsplit(base_url).netloc, timeout=2)
    try:
        # The sign-in page: every other page needs a signed-in user.
        connection.request("GET", "/accounts/login/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_app_server(
    log_path: Path, extra_env: dict[str, str] | None = None, port: int | None = None
) -> AppServer:
    """Start uvicorn on a loopback port and return once it serves the sign-in page.

    The port is a free one unless `port` names it, as a restart on the same
    address does. The subprocess inherits this run's TEST_RUN_ID, channel
    prefix and queue name, which config.test_settings put into os.environ,
    and reads the test database through DATABASE_URL. Its output is appended
    to `log_path`.
    """
    env = os.environ.copy()
    # Browser tests set this in the test process for sync Playwright. The
    # server must keep Django's check, which catches ORM calls in async views.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.test_settings",
        DATABASE_URL=database_url(),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})

    if port is None:
        port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        "2",
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = AppServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)

    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not _answers_http(server.base_url):
        if process.poll() is not None:
            pytest.fail(
                f"uvicorn exited with code {process.returncode} before serving "
                f"{server.base_url}. Log tail ({log_path}):\n{server.log_tail()}"
            )
        if time.monotonic() >= deadline:
            stop_app_server(server)
            pytest.fail(
                f"uvicorn did not serve {server.base_url}/ within {STARTUP_TIMEOUT_SECONDS} s. "
                f"Log tail ({log_path}):\n{server.log_tail()}"
            )
        time.sleep(0.1)
    return server


def stop_app_server(server: AppServer) -> None:
    """Send SIGTERM to the server's PID, then SIGKILL if it has not exited in time."""
    if server.process.poll() is not None:
        return
    os.kill(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=STOP_TIMEOUT_SECONDS)


class _SharedServer:
    """One uvicorn process for every `app_server` fixture instance in the session."""

    def __init__(self) -> None:
        self.server: AppServer | None = None
        self.users = 0

    def acquire(self, log_dir: Path) -> AppServer:
        if self.server is None:
            self.server = start_app_server(log_dir / "uvicorn.log")
        self.users += 1
        return self.server

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.server is not None:
            stop_app_server(self.server)
            self.server = None


_shared_server = _SharedServer()
_extra_servers: list[AppServer] = []


def running_servers() -> list[AppServer]:
    """The servers started by this module that are still running, for failure reports."""
    servers = [_shared_server.server] if _shared_server.server else []
    return servers + list(_extra_servers)


@pytest.fixture(scope="session")
def app_server(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the app under uvicorn, for example `http://127.0.0.1:41234`.

    Tests that create data for the server to read need
    `@pytest.mark.django_db(transaction=True)`, because the server reads only
    committed rows.
    """
    server = _shared_server.acquire(tmp_path_factory.mktemp("uvicorn"))
    try:
        yield server.base_url
    finally:
        _shared_server.release()


@pytest.fixture(scope="session")
def start_extra_app_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[dict[str, str]], str]]:
    """Return a function that starts another server with extra environment variables.

    Each call starts a new uvicorn process and returns its base URL. Every
    process is stopped at the end of the session.
    """
    started: list[AppServer] = []

    def start(extra_env: dict[str, str]) -> str:
        server = start_app_server(tmp_path_factory.mktemp("uvicorn") / "uvicorn.log", extra_env)
        started.append(server)
        _extra_servers.append(server)
        return server.base_url

    yield start
    for server in started:
        stop_app_server(server)
        _extra_servers.remove(server)


class RestartableAppServer:
    """A uvicorn process of one test, which the test stops and starts again on the same port.

    Stopping it cuts every open stream as a crash or a deploy would, and the
    browser reconnects to the same address once it runs again.
    """

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.server: AppServer | None = start_app_server(log_path)
        self.base_url = self.server.base_url
        _extra_servers.append(self.server)

    def stop(self) -> None:
        """Stop the process by its PID (SIGTERM, then SIGKILL) and wait until it exits."""
        if self.server is None:
            return
        stop_app_server(self.server)
        _extra_servers.remove(self.server)
        self.server = None

    def start(self) -> None:
        """Start a new process on the same port; returns once it serves pages."""
        if self.server is not None:
            raise RuntimeError(f"{self.base_url} is still running: stop it first")
        port = urlsplit(self.base_url).port
        self.server = start_app_server(self.log_path, port=port)
        _extra_servers.append(self.server)


@pytest.fixture
def restartable_app_server(django_db_setup: None, tmp_path: Path) -> Iterator[RestartableAppServer]:
    """A uvicorn process for this test alone, on a port of its own; stopped after the test."""
    server = RestartableAppServer(tmp_path / "uvicorn.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the tail of every running server's log to the report of a failed test."""
    report = yield
    fixture_names = set(getattr(item, "fixturenames", ()))
    uses_server = {"app_server", "start_extra_app_server", "restartable_app_server"} & fixture_names
    if report.failed and uses_server:
        for server in running_servers():
            report.sections.append(
                (f"uvicorn log tail ({server.base_url}, {server.log_path})", server.log_tail())
            )
    return report
