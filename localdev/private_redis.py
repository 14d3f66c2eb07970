"""A private Redis server in the services folder."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

from localdev.errors import ServiceError
from localdev.probes import STARTUP_TIMEOUT_SECONDS, is_port_free, probe_redis, wait_until_ready
from localdev.processes import (
    install_debian_packages,
    is_process_running,
    log_tail,
    read_pid,
    run,
    stop_process,
)
from localdev.urls import RedisTarget

REDIS_INSTALL_HINT = (
    "install the Redis server (Debian: apt-get install redis-server) "
    "or set REDIS_URL to a reachable server"
)


class PrivateRedis:
    """A Redis server in SERVICES_DIR/redis that keeps nothing on disk.

    redis.conf contains the settings of the last start, including the port, so
    `redis-server var/redis/redis.conf` starts the same server by hand.
    """

    def __init__(self, root: Path) -> None:
        self.root = root / "redis"
        self.config = self.root / "redis.conf"
        self.pid_file = self.root / "redis.pid"
        self.log = self.root / "redis.log"

    def running_pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        if pid is not None and is_process_running(pid, "redis-server"):
            return pid
        return None

    def configured_port(self) -> int | None:
        try:
            match = re.search(r"^port (\d+)$", self.config.read_text(), re.MULTILINE)
        except OSError:
            return None
        return int(match.group(1)) if match else None

    def start(self, target: RedisTarget) -> int:
        port = target.address.port
        if self.running_pid() is not None:
            raise ServiceError(
                f"the private Redis in {self.root} already runs on port {self.configured_port()}, "
                f"but REDIS_URL asks for port {port}: run `bin/services stop` "
                "or point REDIS_URL at the running one"
            )
        if not is_port_free(target.address.listen_host, port):
            raise ServiceError(
                f"port {port} on {target.address.listen_host} is in use, but no Redis responds "
                "there: free the port or choose another one in REDIS_URL"
            )
        server = shutil.which("redis-server")
        if server is None:
            install_debian_packages(["redis-server"], REDIS_INSTALL_HINT)
            server = shutil.which("redis-server")
            if server is None:
                raise ServiceError(REDIS_INSTALL_HINT)

        self.root.mkdir(parents=True, exist_ok=True)
        settings = [
            "daemonize yes",
            f"bind {target.address.listen_host}",
            f"port {port}",
            'save ""',
            "appendonly no",
            f"dir {self._quote(self.root)}",
            f"pidfile {self._quote(self.pid_file)}",
            f"logfile {self._quote(self.log)}",
        ]
        if target.password is not None:
            settings.append(f"requirepass {self._quote(target.password)}")
        # NOTE: a user name other than "default" in REDIS_URL is not set up as an ACL user.
        self.config.write_text(
            "# Written by bin/services at every start of the private Redis.\n"
            + "\n".join(settings)
            + "\n"
        )
        self.config.chmod(0o600)

        print(f"Redis: starting the private server on {target.address.listen_host}:{port}")
        run([server, str(self.config)], "redis-server")
        probe = wait_until_ready(probe_redis, target, STARTUP_TIMEOUT_SECONDS)
        pid = self.running_pid()
        if not probe.is_up or pid is None:
            raise ServiceError(
                f"Redis did not come up on port {port} ({probe.state} {probe.detail}); "
                f"last lines of {self.log}:\n{log_tail(self.log)}"
            )
        return pid

    @staticmethod
    def _quote(value: object) -> str:
        text = str(value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def stop(self) -> bool:
        pid = self.running_pid()
        if pid is None:
            return False
        print(f"Redis: stopping the private server (PID {pid})")
        if not stop_process(pid, "redis-server", signal.SIGTERM, signal.SIGKILL):
            raise ServiceError(f"Redis (PID {pid}) did not exit after SIGTERM and SIGKILL")
        return True
