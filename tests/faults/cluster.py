"""Celery worker and beat subprocesses for fault tests, and a polling helper.

Each process starts in its own session, so its PID is also its process
group id. A test kills a worker with `os.killpg(pid, SIGKILL)`, which takes
down the worker and anything it started, the way a lost container or host
would. Processes are stopped by PID at teardown: SIGTERM to the group, then
SIGKILL after STOP_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from tests.faults.providers import COUNTER_URL_VARIABLE, WORKER_NAME_VARIABLE
from tests.servers import PROJECT_ROOT, database_url

# A worker took 10 to 38 s from start to "ready" on a 2-CPU machine at load
# averages of 4 to 10 (other test runs), mostly importing Django and Celery.
STARTUP_TIMEOUT_SECONDS = 90.0
# A Celery worker finishes its running tasks after SIGTERM (a warm shutdown).
# A worker loop that is still delivering gets this long before SIGKILL.
STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_LINES = 40

# Worker settings that every fault test uses: a short lease, so the sweep
# requeues a dead worker's claims within seconds, and the counting provider.
WORKER_ENVIRONMENT = {
    "DELIVERY_PROVIDER": "tests.faults.providers.CountingProvider",
    "DELIVERY_LEASE_SECONDS": "3",
    "DISPATCH_SWEEP_INTERVAL_SECONDS": "1",
    # Tests count the dispatch logger's INFO lines in worker logs, such as
    # "worker loop started".
    "LOG_LEVEL": "INFO",
}


@dataclass
class CeleryProcess:
    """A `celery worker` or `celery beat` subprocess and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    # The Celery node name of a worker, which its "ready." log line contains.
    node_name: str = ""
    # The queues and thread count that a worker was started with, for a restart.
    queues: tuple[str, ...] = ()
    concurrency: int = 0
    killed: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = "\n".join(self.log_text().splitlines()[-lines:])
        return text or "(log is empty)"

    def kill(self) -> None:
        """Send SIGKILL to the process group and wait until the worker has exited."""
        self.killed = True
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def terminate(self) -> None:
        """Send SIGTERM to the process group unless the process has exited."""
        # poll() reaps an exited leader. Until then its PID, which is the group
        # id, cannot be reused, so signalling the group reaches only our processes.
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Send SIGTERM to the process group, then SIGKILL if it runs after `timeout` s."""
        self.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


@dataclass
class DispatchCluster:
    """The worker and beat processes of one test.

    With `supervise`, a worker that exits on its own is started again under
    the same name, as a process supervisor (systemd, Kubernetes) would do,
    and the exited process moves to `exited`. Without it, such an exit fails
    the test.
    """

    log_dir: Path
    environment: dict[str, str]
    supervise: bool = False
    workers: list[CeleryProcess] = field(default_factory=list)
    beat: CeleryProcess | None = None
    exited: list[CeleryProcess] = field(default_factory=list)

    @property
    def processes(self) -> list[CeleryProcess]:
        return self.workers + ([self.beat] if self.beat else [])

    def worker_named(self, name: str) -> CeleryProcess:
        for worker in self.workers:
            if worker.name == name:
                return worker
        names = [worker.name for worker in self.workers]
        raise KeyError(f"no worker named {name!r}: the workers are {names}")

    def check_alive(self) -> None:
        """Fail the test when a process that was not killed on purpose has exited.

        With `supervise`, start such a worker again instead.
        """
        for process in self.processes:
            if process.killed or process.is_running():
                continue
            if self.supervise and process in self.workers:
                self.exited.append(process)
                replacement = launch_worker(
                    self,
                    process.name,
                    queues=process.queues,
                    concurrency=process.concurrency,
                    restart=len(self.exited),
                )
                self.workers[self.workers.index(process)] = replacement
            else:
                pytest.fail(
                    f"{process.name} (PID {process.pid}) exited with code "
                    f"{process.process.returncode}. Log tail ({process.log_path}):\n"
                    f"{process.log_tail()}"
                )

    def wait_until_ready(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Wait until every worker has logged that it is ready to consume its queue."""
        wait_for(
            lambda: all(
                f"{worker.node_name} ready." in worker.log_text() for worker in self.workers
            ),
            timeout,
            lambda: "not every worker logged that it is ready",
            self,
        )

    def count_in_logs(self, pattern: str) -> int:
        """Count the lines that match the regular expression `pattern` in the logs of every
        worker, including workers that exited."""
        regex = re.compile(pattern)
        return sum(
            1
            for worker in self.workers + self.exited
            for line in worker.log_text().splitlines()
            if regex.search(line)
        )

    def stop(self) -> None:
        """Stop beat, then send SIGTERM to every worker at once and SIGKILL to those still
        running after STOP_TIMEOUT_SECONDS."""
        if self.beat is not None:
            self.beat.stop()
        for worker in self.workers:
            worker.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for worker in self.workers:
            worker.stop(timeout=max(0.0, deadline - time.monotonic()))


def cluster_environment(extra: dict[str, str]) -> dict[str, str]:
    """Build the environment of the Celery subprocesses.

    It inherits TEST_RUN_ID, the channel prefix and the queue names, which
    config.test_settings put into os.environ, and reads pytest-django's test
    database. Call it after `django_db_setup`, which renames that database.
    """
    env = os.environ.copy()
    # Browser tests set this in the test process, but workers keep Django's check.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.test_settings",
        DATABASE_URL=database_url(),
        PYTHONUNBUFFERED="1",
    )
    env[COUNTER_URL_VARIABLE] = settings.REDIS_URL
    env.update(WORKER_ENVIRONMENT)
    env.update(extra)
    return env


def _start(name: str, arguments: list[str], env: dict[str, str], log_path: Path) -> CeleryProcess:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *arguments],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return CeleryProcess(name=name, process=process, log_path=log_path)


def run_queues() -> tuple[str, ...]:
    """Return this run's queues, which config.test_settings names."""
    return (
        settings.CELERY_TASK_DEFAULT_QUEUE,
        settings.DISPATCH_CONTROL_QUEUE,
        settings.IMPORT_QUEUE,
    )


def start_worker(
    cluster: DispatchCluster,
    name: str,
    queues: tuple[str, ...] | None = None,
    concurrency: int = 2,
) -> CeleryProcess:
    """Start a worker with `concurrency` task threads that consumes `queues`.

    The queues default to both of this run's queues, as `celery worker`
    without -Q consumes both. The worker logs at INFO, so its log shows
    every task it receives.
    """
    worker = launch_worker(cluster, name, queues or run_queues(), concurrency)
    cluster.workers.append(worker)
    return worker


def launch_worker(
    cluster: DispatchCluster,
    name: str,
    queues: tuple[str, ...],
    concurrency: int,
    restart: int = 0,
) -> CeleryProcess:
    """Start the worker process `name`. A restart writes to a log file of its own."""
    env = {**cluster.environment, WORKER_NAME_VARIABLE: name}
    node_name = f"{name}-{os.environ['TEST_RUN_ID']}@{socket.gethostname()}"
    arguments = [
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency}",
        "-Q",
        ",".join(queues),
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
        "-n",
        node_name,
    ]
    log_name = f"{name}-restart-{restart}" if restart else name
    worker = _start(name, arguments, env, cluster.log_dir / f"{log_name}.log")
    worker.node_name = node_name
    worker.queues = queues
    worker.concurrency = concurrency
    return worker


def start_beat(cluster: DispatchCluster) -> CeleryProcess:
    """Start celery beat, which sends the sweep task every DISPATCH_SWEEP_INTERVAL_SECONDS."""
    arguments = [
        "beat",
        "--loglevel=WARNING",
        "--schedule",
        str(cluster.log_dir / "beat-schedule"),
    ]
    cluster.beat = _start("beat", arguments, cluster.environment, cluster.log_dir / "beat.log")
    return cluster.beat


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    failure_message: Callable[[], str],
    cluster: DispatchCluster | None = None,
    interval: float = 0.2,
) -> None:
    """Call `condition` every `interval` s until it returns true.

    Fails the test after `timeout` s with `failure_message()`, or as soon as
    a process of `cluster` that was not killed on purpose has exited.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if cluster is not None:
            cluster.check_alive()
        if time.monotonic() >= deadline:
            pytest.fail(f"{failure_message()} (waited {timeout} s)")
        time.sleep(interval)
